#!/usr/bin/env bash
# Builds the sandbox image (Debian minbase + python3 + py-spy) without any registry:
#   - the root filesystem comes from debootstrap, from the Debian mirror this machine's apt already
#     uses (read from its apt configuration, never hard-coded),
#   - py-spy's binary comes from its PyPI wheel,
#   - `docker import` turns the tree into an image; `/tmp` is 1777 so the tmpfs mounted over it is
#     writable by the unprivileged user the runner runs scripts as.
# Prints the image name. Idempotent: an existing image is kept unless FT_REBUILD=1.
# Operators whose machines can pull images can use deploy/sandbox/Dockerfile instead.
set -euo pipefail

image=${FT_SANDBOX_IMAGE:-flamethread-sandbox:py3}
log() { printf '[sandbox-image] %s\n' "$*" >&2; }

if [ -z "${FT_REBUILD:-}" ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    exit 0
fi

apt_mirror() {
    local file uri
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] || continue
        # deb822: the first URIs of a stanza whose suites are not only security updates.
        uri=$(awk 'BEGIN{RS=""} /Suites:/ && !/Suites:[^\n]*-security/ {
                  if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$file")
        [ -n "$uri" ] && { echo "$uri"; return 0; }
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$file" ] || continue
        uri=$(awk '$1 == "deb" && $3 !~ /-security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$file")
        [ -n "$uri" ] && { echo "$uri"; return 0; }
    done
    return 1
}

mirror=$(apt_mirror) || { log "cannot find a Debian mirror in the apt configuration"; exit 1; }
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

log "debootstrap $suite (minbase + python3) from the apt mirror"
debootstrap --variant=minbase --include=python3 "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
}

log "py-spy from its wheel"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$work/wheel" "py-spy${FT_PY_SPY_VERSION:+==$FT_PY_SPY_VERSION}" >&2
python3 - "$work/wheel" "$rootfs/usr/local/bin/py-spy" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("py_spy-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith("/scripts/py-spy"))
    pathlib.Path(sys.argv[2]).write_bytes(archive.read(name))
PY
chmod 0755 "$rootfs/usr/local/bin/py-spy"

# What a script may see: no package caches, no apt lists, a world-writable sticky /tmp, /work
# for the script (bind-mounted read-only at run time).
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
chmod 1777 "$rootfs/tmp"
mkdir -p "$rootfs/work"

log "docker import as $image"
tar -C "$rootfs" -c . | docker import \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /tmp' \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME=/tmp' \
    --change 'LABEL org.opencontainers.image.title=flamethread-sandbox' \
    - "$image" >/dev/null
echo "$image"
