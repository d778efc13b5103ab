#!/usr/bin/env bash
# Runs the whole flamethread pipeline on this machine on embedded defaults: a local nats-server
# with JetStream (installed if missing), the Slack emulator on 127.0.0.1:3001 (open it in a
# browser to watch #alerts), and the five services, each with its admin server on
# 127.0.0.1:9101-9105. Ctrl-C stops everything (SIGTERM, so the services drain).
#
# The services' defaults point at the emulator and its tokens, so no config is needed. Post an
# alert as Alertmanager would (its webhook into #alerts) with:
#   curl -s -XPOST 127.0.0.1:3001/services/T0FLAME/B0AMGR/alertmanager -H 'content-type: application/json' \
#     -d '{"attachments":[{"color":"danger","title":"[FIRING:1] HighCPU checkout","text":""}]}'
set -euo pipefail
cd "$(dirname "$0")/../.."

NATS_SERVER_BIN=$(deploy/local/install-deps.sh)
state=${FLAMETHREAD_STATE:-target/local}
mkdir -p "$state"
port=${FLAMETHREAD_NATS_PORT:-4222}

echo "building the services (release)..." >&2
cargo build --release --quiet -p slack-emulator \
    -p slack-gateway -p alert-watcher -p profile-fetcher -p sandbox-runner -p remediation-poster

pids=()
nats_pid=
stop() {
    trap - INT TERM EXIT
    echo "stopping..." >&2
    # Services first, so they drain against a live server; NATS last.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "$nats_pid" ] && kill -TERM "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null || true
}
trap stop INT TERM EXIT

"$NATS_SERVER_BIN" --jetstream --addr 127.0.0.1 --port "$port" --store_dir "$state/jetstream" \
    --log "$state/nats-server.log" &
nats_pid=$!
for _ in $(seq 100); do
    grep -q "Server is ready" "$state/nats-server.log" 2>/dev/null && break
    sleep 0.1
done

slack_addr=${FLAMETHREAD_SLACK_ADDR:-127.0.0.1:3001}
target/release/slack-emulator "$slack_addr" &
pids+=($!)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://$slack_addr/control/channels" && break
    sleep 0.1
done

admin_port=9101
for service in slack-gateway alert-watcher profile-fetcher sandbox-runner remediation-poster; do
    prefix=$(echo "$service" | tr 'a-z-' 'A-Z_')_
    slack_env=()
    case $service in
        slack-gateway | remediation-poster) slack_env=("${prefix}SLACK__API_URL=http://$slack_addr/api") ;;
    esac
    env "${prefix}NATS__URL=nats://127.0.0.1:$port" "${prefix}ADMIN__LISTEN=127.0.0.1:$admin_port" \
        "${slack_env[@]}" "target/release/$service" &
    pids+=($!)
    admin_port=$((admin_port + 1))
done

sleep 1
for admin_port in 9101 9102 9103 9104 9105; do
    status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/readyz" || true)
    echo "127.0.0.1:$admin_port/readyz -> $status" >&2
done
echo "flamethread is running (nats://127.0.0.1:$port, Slack emulator http://$slack_addr); Ctrl-C to stop" >&2
wait
