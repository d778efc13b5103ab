#!/usr/bin/env bash
# The whole-pipeline load runs whose figures are in BENCHMARKS.md ("The whole pipeline under
# load"): builds the five services and the harness (release), then runs flamethread-load for each
# scenario. Needs what the tests need (deploy/local/install-deps.sh: nats-server, Prometheus).
#   tests/load/run.sh              # every scenario (about 12 minutes on 2 cores)
#   tests/load/run.sh storm        # one of: storm, storm-10-channels, sustained, cluster
set -euo pipefail
cd "$(dirname "$0")/../.."

NATS_SERVER_BIN=$(deploy/local/install-deps.sh run)
export NATS_SERVER_BIN
cargo build --release --quiet -p load -p slack-gateway -p alert-watcher -p profile-fetcher \
    -p sandbox-runner -p remediation-poster

scenario() {
    echo "## $1: flamethread-load ${*:2}" >&2
    target/release/flamethread-load "${@:2}"
}
want=${1:-all}
# A storm: 3,000 notifications a minute, 30 distinct alerts all firing within 5 s, in one channel
# (the poster keeps to Slack's one post a second per channel).
if [ "$want" = all ] || [ "$want" = storm ]; then
    scenario storm --alerts 30 --messages 3000 --seconds 60 --introduce-within 5 --channels 1
fi
# The same storm spread over 10 channels (teams' channels): Slack's per-channel limit no longer
# queues the replies.
if [ "$want" = all ] || [ "$want" = storm-10-channels ]; then
    scenario storm-10-channels --alerts 30 --messages 3000 --seconds 60 --introduce-within 5 --channels 10
fi
# Sustained: 5 minutes at 1,200 notifications a minute, a new distinct alert every 2 s (150 in
# all) over 10 channels.
if [ "$want" = all ] || [ "$want" = sustained ]; then
    scenario sustained --alerts 150 --messages 6000 --seconds 300 --channels 10
fi
# The storm through a 3-node JetStream cluster (everything at 3 replicas), two processes of every
# service, while the meta leader (at 10 s) and then the Slack stream's leader (at 30 s) are
# killed and restarted 6 s later. (tests/load/tests/cluster.rs runs a smaller one in the suite.)
if [ "$want" = all ] || [ "$want" = cluster ]; then
    scenario cluster --alerts 30 --messages 3000 --seconds 60 --introduce-within 40 --channels 10 \
        --cluster --replicas 2 --kill-meta-leader-at 10 --kill-stream-leader-at 30
fi
