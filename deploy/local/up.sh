#!/usr/bin/env bash
# Runs the whole flamethread pipeline on this machine on embedded defaults: a local nats-server
# with JetStream (installed if missing), the Slack emulator on 127.0.0.1:3001 (open it in a
# browser to watch #alerts), the five services (admin servers on 127.0.0.1:9101-9105), and a demo:
# a checkout service with a real CPU hot spot (tests/demo-app, on 127.0.0.1:6060), a Prometheus
# that scrapes it (127.0.0.1:9090) with an alerting rule, and an Alertmanager (127.0.0.1:9093)
# whose Slack notifier posts into the emulator's #alerts. Once everything is ready the demo's
# coupon campaign starts: within seconds #alerts gets "[FIRING:1] CheckoutCpuHigh" and, in its
# thread, flamethread's diagnosis with the metrics, the hot function and a flamegraph link
# (pages on 127.0.0.1:9190). After FLAMETHREAD_DEMO_SECONDS (default 90) the campaign stops and
# the alert resolves in the same thread. FLAMETHREAD_DEMO=0 leaves the demo out.
#
# Real Slack: with SLACK_APP_TOKEN (xapp-…) and SLACK_BOT_TOKEN (xoxb-…) in the environment the
# gateway and the poster talk to your workspace instead of the emulator (see deploy/slack), and
# the demo's Alertmanager posts through SLACK_ALERTS_WEBHOOK (an incoming webhook into a channel
# the app is in); without that webhook the demo raises no alert.
#
# Ctrl-C stops everything (SIGTERM, so the services drain). Post an alert by hand as Alertmanager
# would (its webhook into #alerts) with:
#   curl -s -XPOST 127.0.0.1:3001/services/T0FLAME/B0AMGR/alertmanager -H 'content-type: application/json' \
#     -d '{"attachments":[{"color":"danger","title":"[FIRING:1] HighCPU checkout","text":""}]}'
#
# Addresses: FLAMETHREAD_NATS_PORT (4222), FLAMETHREAD_SLACK_ADDR (127.0.0.1:3001),
# FLAMETHREAD_PROMETHEUS_ADDR (127.0.0.1:9090), FLAMETHREAD_ALERTMANAGER_ADDR (127.0.0.1:9093);
# the services' admin ports are 9101-9105, the pages 9190, the demo app 6060. Nothing already
# running on this machine is stopped: a port in use is reported before anything starts.
set -euo pipefail
cd "$(dirname "$0")/../.."

# What building needs, said up front rather than as a compiler error ten minutes in.
missing=()
command -v cargo >/dev/null 2>&1 || missing+=("cargo: Rust 1.95 or newer, from rustup")
command -v cc >/dev/null 2>&1 || missing+=("a C compiler (cc): apt-get install gcc")
command -v curl >/dev/null 2>&1 || missing+=("curl: apt-get install curl")
command -v python3 >/dev/null 2>&1 || missing+=("python3: apt-get install python3")
if [ ${#missing[@]} -gt 0 ]; then
    printf 'deploy/local/up.sh needs:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi

state=${FLAMETHREAD_STATE:-target/local}
port=${FLAMETHREAD_NATS_PORT:-4222}
slack_addr=${FLAMETHREAD_SLACK_ADDR:-127.0.0.1:3001}
prometheus_addr=${FLAMETHREAD_PROMETHEUS_ADDR:-127.0.0.1:9090}
alertmanager_addr=${FLAMETHREAD_ALERTMANAGER_ADDR:-127.0.0.1:9093}
demo_addr=127.0.0.1:6060
demo=${FLAMETHREAD_DEMO:-1}
real_slack=
if [ -n "${SLACK_APP_TOKEN:-}" ] && [ -n "${SLACK_BOT_TOKEN:-}" ]; then
    real_slack=1
fi
in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
# Every address this run listens on: NATS, the five admin servers, the pages, flamethread's own
# span intake (4318, OTLP's port), the emulator unless Slack is real, the demo's unless it is off.
wanted=("127.0.0.1:$port" 127.0.0.1:9101 127.0.0.1:9102 127.0.0.1:9103 127.0.0.1:9104 127.0.0.1:9105
    127.0.0.1:9190 127.0.0.1:4318)
[ -n "$real_slack" ] || wanted+=("$slack_addr")
[ "$demo" = 0 ] || wanted+=("$prometheus_addr" "$alertmanager_addr" "$demo_addr")
busy=()
for addr in "${wanted[@]}"; do
    in_use "$addr" && busy+=("$addr")
done
if [ ${#busy[@]} -gt 0 ]; then
    echo "deploy/local/up.sh: already in use on this machine: ${busy[*]}" >&2
    echo "  (another flamethread, or a Prometheus or Alertmanager of this machine's?) Stop it, or" >&2
    echo "  move ours with the FLAMETHREAD_*_ADDR / FLAMETHREAD_NATS_PORT settings in this script's header." >&2
    exit 1
fi

NATS_SERVER_BIN=$(deploy/local/install-deps.sh run)
mkdir -p "$state"
# The emulator starts empty every run. What NATS and Alertmanager kept from an earlier run is
# about threads it no longer has: an incident still open would take the new alert into a thread
# that is gone, and Alertmanager, having sent the alert already, would not send it again for an
# hour, so a second run of the demo showed nothing. Against a real workspace both are kept.
if [ -z "$real_slack" ]; then
    # The span store's files name the stream sequences they hold, so they go with the stream.
    rm -rf "$state/jetstream" "$state/demo/alertmanager" "$state/spans"
fi

# The dev profile: a first run compiles in about a third of a release build's time (6.4 min
# against 17+ on two cores), the demo's load is nothing for unoptimized code, and tests/run.sh
# reuses what it built. Only what runs is built (no tests, benches or tools).
#
# The span store's SQL engine (DataFusion, Arrow, Parquet) is 43% of that first build and its
# last two minutes, so when it was never built here, profile-fetcher is built without it first
# (its span intake still takes spans into JetStream), everything starts and the demo's first
# reply comes; the store is built in the background and swapped in when ready, and the spans
# taken in meanwhile are all stored (it reads JetStream from the start).
# What runs. The second build (with the store) builds the same packages, so that every crate they
# share is built with the same features and is not compiled again (libs/spans/Cargo.toml turns on
# what DataFusion would; tidy::the_span_store_adds_no_features_to_what_the_rest_builds checks it).
packages=(slack-emulator demo-app slack-gateway alert-watcher profile-fetcher sandbox-runner remediation-poster)
span_store_later=
if ! compgen -G "target/debug/deps/libdatafusion-*.rlib" >/dev/null; then
    span_store_later=1
    echo "building the services (the span store's SQL engine later, in the background)..." >&2
else
    echo "building the services..." >&2
fi
cargo build --quiet "${packages[@]/#/-p=}" ${span_store_later:+--no-default-features}
pids=()
nats_pid=
build_pid=
stop() {
    trap - INT TERM EXIT
    echo "stopping..." >&2
    # The background build as a whole (cargo and its compilers), then the services, so they drain
    # against a live server; NATS last.
    [ -n "$build_pid" ] && kill -TERM -- "-$build_pid" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "$nats_pid" ] && kill -TERM "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null || true
}
# A signal stops everything and ends the script (bash would otherwise go on after the trap).
trap 'stop; exit 130' INT TERM
trap stop EXIT

"$NATS_SERVER_BIN" --jetstream --addr 127.0.0.1 --port "$port" --store_dir "$state/jetstream" \
    --log "$state/nats-server.log" &
nats_pid=$!
for _ in $(seq 100); do
    grep -q "Server is ready" "$state/nats-server.log" 2>/dev/null && break
    sleep 0.1
done

if [ -z "$real_slack" ]; then
    target/debug/slack-emulator "$slack_addr" &
    pids+=($!)
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://$slack_addr/control/channels" && break
        sleep 0.1
    done
    alerts_webhook="http://$slack_addr/services/T0FLAME/B0AMGR/alertmanager"
else
    alerts_webhook=${SLACK_ALERTS_WEBHOOK:-}
fi

# The demo: the checkout service, a Prometheus with its alerting rule, an Alertmanager posting
# into #alerts. Their configuration is deploy/local/demo with the addresses filled in.
wait_http() {
    for _ in $(seq 150); do
        curl -s -o /dev/null "http://$1" && return 0
        sleep 0.2
    done
    echo "$1 did not answer" >&2
    return 1
}
if [ "$demo" != 0 ]; then
    mkdir -p "$state/demo"
    # checkout traces each request into flamethread's span intake, as an app with an
    # OpenTelemetry SDK would.
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces \
        target/debug/flamethread-demo --listen "$demo_addr" >"$state/demo/checkout.log" 2>&1 &
    pids+=($!)
    if [ -n "$alerts_webhook" ]; then
        sed "s|__SLACK_WEBHOOK__|$alerts_webhook|" deploy/local/demo/alertmanager.yml >"$state/demo/alertmanager.yml"
        "${ALERTMANAGER_BIN:-/usr/bin/prometheus-alertmanager}" --config.file="$state/demo/alertmanager.yml" \
            --storage.path="$state/demo/alertmanager" --web.listen-address="$alertmanager_addr" \
            --cluster.listen-address= >"$state/demo/alertmanager.log" 2>&1 &
        pids+=($!)
    else
        echo "no SLACK_ALERTS_WEBHOOK: the demo runs without Alertmanager, so it raises no alert" >&2
    fi
    sed -e "s|__RULES__|$PWD/deploy/local/demo/rules.yml|" -e "s|__ALERTMANAGER__|$alertmanager_addr|" \
        -e "s|__DEMO__|$demo_addr|" deploy/local/demo/prometheus.yml >"$state/demo/prometheus.yml"
    "${PROMETHEUS_BIN:-/usr/bin/prometheus}" --config.file="$state/demo/prometheus.yml" \
        --storage.tsdb.path="$state/demo/prometheus" --web.listen-address="$prometheus_addr" \
        >"$state/demo/prometheus.log" 2>&1 &
    pids+=($!)
    wait_http "$demo_addr/healthz"
    wait_http "$prometheus_addr/-/ready"
fi

# The markers API's token for this run: the demo records its deploy with it, and so can you.
changes_token=${FLAMETHREAD_CHANGES_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
# The span store's SQL token (flamethread-sql reads it from FLAMETHREAD_SQL_TOKEN).
sql_token=${FLAMETHREAD_SQL_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}

# Shared scripts run in Docker: with an engine on this machine (and the sandbox image, built once
# from a Debian rootfs) they are offered and run; without one everything else works, and
# sandbox-runner reports itself not ready.
sandbox=0
if docker info >/dev/null 2>&1; then
    if deploy/sandbox/build-image.sh >/dev/null; then
        sandbox=1
    else
        echo "the sandbox image could not be built (deploy/sandbox/build-image.sh needs debootstrap): shared scripts will not run" >&2
    fi
else
    echo "no Docker engine reachable here: shared scripts will not run (everything else does)" >&2
fi

declare -A pid_of admin_of=([slack-gateway]=9101 [alert-watcher]=9102 [profile-fetcher]=9103
    [sandbox-runner]=9104 [remediation-poster]=9105)
start_service() {
    local service=$1 admin_port=${admin_of[$1]}
    local prefix extra
    prefix=$(echo "$service" | tr 'a-z-' 'A-Z_')_
    # Every service traces itself into flamethread's own span store (profile-fetcher's intake).
    extra=("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces")
    case $service in
        slack-gateway | remediation-poster)
            if [ -z "$real_slack" ]; then
                extra+=("${prefix}SLACK__API_URL=http://$slack_addr/api")
            else
                extra+=("${prefix}SLACK__API_URL=https://slack.com/api" "${prefix}SLACK__BOT_TOKEN=$SLACK_BOT_TOKEN")
                [ "$service" = slack-gateway ] && extra+=("${prefix}SLACK__APP_TOKEN=$SLACK_APP_TOKEN")
            fi
            ;;
    esac
    if [ "$demo" != 0 ]; then
        case $service in
            alert-watcher)
                # The demo's buttons are for whoever opens the emulator; a real workspace names
                # its people in [actions] (empty lists are nobody).
                extra+=("${prefix}ALERTMANAGER__URL=http://$alertmanager_addr" "${prefix}INCIDENTS__LOOKBACK=5m")
                if [ -z "$real_slack" ]; then extra+=("${prefix}ACTIONS__ALLOW_ANYONE=true"); fi ;;
            remediation-poster)
                # The reply's trace id opens the pipeline's own trace, from flamethread's span store.
                extra+=("${prefix}DIAGNOSIS__TRACE_URL=http://127.0.0.1:9190/traces/{trace_id}") ;;
            profile-fetcher)
                extra+=("${prefix}PROMETHEUS__URL=http://$prometheus_addr" "${prefix}PAGES__LISTEN=127.0.0.1:9190"
                    "${prefix}PAGES__PUBLIC_URL=http://127.0.0.1:9190" "${prefix}LIVE__DEFAULT_SECONDS=5"
                    "${prefix}LIVE__TARGETS__CHECKOUT=http://$demo_addr" "${prefix}CHANGES__API_TOKEN=$changes_token"
                    "${prefix}TRACES__LISTEN=127.0.0.1:4318" "${prefix}TRACES__DIR=$state/spans"
                    "${prefix}TRACES__SQL_TOKEN=$sql_token") ;;
            # A shared script's flamegraph is served by profile-fetcher's pages.
            sandbox-runner) extra+=("${prefix}SANDBOX__PAGES_URL=http://127.0.0.1:9190") ;;
        esac
    fi
    env "${prefix}NATS__URL=nats://127.0.0.1:$port" "${prefix}ADMIN__LISTEN=127.0.0.1:$admin_port" \
        "${extra[@]}" "target/debug/$service" &
    pid_of[$service]=$!
    pids+=($!)
}
# Waits for a service's /readyz, says what it answered, and fails unless it was ready.
wait_ready() {
    local status=000
    for _ in $(seq 300); do
        status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz" || true)
        [ "$status" = 200 ] && break
        sleep 0.2
    done
    echo "127.0.0.1:$1/readyz -> $status" >&2
    [ "$status" = 200 ]
}
for service in slack-gateway alert-watcher profile-fetcher sandbox-runner remediation-poster; do
    start_service "$service"
done

# Each service says when it is ready (connected, consumers made); the demo starts after all of
# them, however long a busy machine takes.
for service in slack-gateway alert-watcher profile-fetcher sandbox-runner remediation-poster; do
    if [ "$service" = sandbox-runner ] && [ "$sandbox" = 0 ]; then
        continue
    fi
    wait_ready "${admin_of[$service]}" || true
done
if [ -z "$real_slack" ]; then
    echo "flamethread is running (nats://127.0.0.1:$port); open the Slack emulator at http://$slack_addr" >&2
else
    echo "flamethread is running (nats://127.0.0.1:$port) against your Slack workspace" >&2
fi
if [ "$demo" != 0 ] && [ -n "$alerts_webhook" ]; then
    seconds=${FLAMETHREAD_DEMO_SECONDS:-90}
    # A CI job would record the deploy that starts the campaign; the thread lists it as what
    # changed before the alert, and marks it on the chart.
    deploy='{"service":"checkout","version":"1.4.2","kind":"deploy","who":"CI run 812","environment":"demo","message":"coupons: match campaign codes with the new pattern"}'
    curl -s -o /dev/null -w 'demo: deploy marker recorded (%{http_code})\n' -XPOST http://127.0.0.1:9190/api/v1/changes \
        -H "Authorization: Bearer $changes_token" -H 'Content-Type: application/json' -d "$deploy" >&2
    echo "      record your own: curl -H 'Authorization: Bearer $changes_token' -H 'Content-Type: application/json' \\" >&2
    echo "          -d '{\"service\":\"checkout\",\"version\":\"1.4.3\"}' http://127.0.0.1:9190/api/v1/changes" >&2
    echo "      spans: any OpenTelemetry SDK to http://127.0.0.1:4318/v1/traces; then SQL over them${span_store_later:+ once the span store is in}:" >&2
    echo "          FLAMETHREAD_SQL_TOKEN=$sql_token target/debug/flamethread-sql \\" >&2
    echo "          \"SELECT ServiceName, SpanName, count(*) FROM otel_traces GROUP BY 1, 2\"" >&2
    wait_http "$demo_addr/metrics"
    curl -s -o /dev/null -XPOST "http://$demo_addr/campaign/start"
    echo "demo: checkout's coupon campaign is burning the CPU; the alert reaches #alerts within seconds," >&2
    echo "      and resolves about ${seconds}s from now, when the campaign ends (Prometheus http://$prometheus_addr)" >&2
    (sleep "$seconds" && curl -s -o /dev/null -XPOST "http://$demo_addr/campaign/stop" \
        && echo "demo: the campaign ended; the alert resolves in the same thread" >&2) &
fi
echo "Ctrl-C to stop" >&2
if [ -n "$span_store_later" ]; then
    # Niced, so the demo's services keep the CPU they need while it compiles; in a process group
    # of its own, so that stopping stops its compilers too.
    setsid nice -n 19 cargo build --quiet "${packages[@]/#/-p=}" >"$state/span-store-build.log" 2>&1 &
    build_pid=$!
    if wait "$build_pid"; then
        build_pid=
        old_pid=${pid_of[profile-fetcher]}
        kill -TERM "$old_pid" && wait "$old_pid" || true
        kept=()
        for pid in "${pids[@]}"; do [ "$pid" = "$old_pid" ] || kept+=("$pid"); done
        pids=("${kept[@]}")
        start_service profile-fetcher
        if wait_ready "${admin_of[profile-fetcher]}"; then
            echo "profile-fetcher now has its span store, with the spans taken in so far; SQL over them:" >&2
            echo "          FLAMETHREAD_SQL_TOKEN=$sql_token target/debug/flamethread-sql \\" >&2
            echo "          \"SELECT SpanName, count(*), approx_percentile_cont(Duration, 0.95) / 1e6 AS p95_ms FROM otel_traces GROUP BY 1\"" >&2
            # The demo's campaign is not run again by itself: its reply would compare against
            # an hour that holds the first campaign. Start it yourself, or post any alert.
            echo "          replies from now on show requests too (the first one says the store was not in)" >&2
        else
            echo "profile-fetcher with its span store did not become ready (its log is above)" >&2
        fi
    else
        echo "building the span store failed ($state/span-store-build.log); everything else keeps running" >&2
    fi
fi
wait
