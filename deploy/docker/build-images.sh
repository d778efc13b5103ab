#!/usr/bin/env bash
# Builds flamethread's images without any registry, one per service plus NATS:
#   flamethread-<service>:<tag>  from scratch: the service's binary, the shared libraries it loads
#                                (as ldd lists them, from this machine, which built it), CA
#                                certificates, and a passwd entry for the unprivileged user
#                                (10001) it runs as. No shell, no package manager.
#   flamethread-nats:<tag>       from scratch: nats-server's static binary (deploy/local/install-deps.sh
#                                finds or installs it), /data owned by that same user.
#   flamethread-sandbox-archive:<tag>
#                                from scratch: `docker save` of the sandbox image (FT_SANDBOX_IMAGE,
#                                default flamethread-sandbox:py3) and cp, for k8s/sandbox's init
#                                container: a pod's engine cannot pull, sandbox-runner loads the
#                                archive into it. Built when the sandbox image is here
#                                (deploy/sandbox/build-image.sh builds it).
# `docker import` turns each tree into an image, as deploy/sandbox/build-image.sh does for the
# sandbox's. Operators whose machines can pull images can use deploy/docker/Dockerfile instead.
#   deploy/docker/build-images.sh                          # cargo build --release, then the images
#   FT_BIN_DIR=target/debug deploy/docker/build-images.sh  # from binaries already built there
# FT_IMAGE_TAG sets the tag (default dev). Prints each image with its size, one per line.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '[images] %s\n' "$*" >&2; }

tag=${FT_IMAGE_TAG:-dev}
# Each service and the ports it listens on: admin (/healthz, /readyz, /metrics, pprof), and
# alert-watcher's Alertmanager webhook, profile-fetcher's pages, the gateway's HTTP mode.
declare -A ports=(
    [slack-gateway]="9101 3000"
    [alert-watcher]="9102 9180"
    [profile-fetcher]="9103 9190"
    [sandbox-runner]="9104"
    [remediation-poster]="9105"
)
services=(slack-gateway alert-watcher profile-fetcher sandbox-runner remediation-poster)

if [ -n "${FT_BIN_DIR:-}" ]; then
    bin_dir=$FT_BIN_DIR
else
    log "cargo build --release (the five services)"
    packages=()
    for service in "${services[@]}"; do packages+=(-p "$service"); done
    cargo build --release --locked "${packages[@]}" >&2
    bin_dir=target/release
fi
for service in "${services[@]}"; do
    [ -x "$bin_dir/$service" ] || { log "no $bin_dir/$service: build it first (cargo build -p $service)"; exit 1; }
done
command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { log "needs a running Docker engine"; exit 1; }
nats_server=$(NATS_SERVER_BIN=${NATS_SERVER_BIN:-} deploy/local/install-deps.sh run)

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The tree every image starts from: who the user is, where names are looked up, a /tmp.
base_tree() {
    local root=$1
    mkdir -p "$root/etc" "$root/tmp" "$root/usr/local/bin"
    chmod 1777 "$root/tmp"
    printf 'root:x:0:0::/nonexistent:/sbin/nologin\nflamethread:x:10001:10001::/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
    printf 'root:x:0:\nflamethread:x:10001:\n' >"$root/etc/group"
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# `$1`'s shared libraries (and the dynamic loader) copied into `$2` at the same paths.
copy_libraries() {
    local binary=$1 root=$2 library
    for library in $(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        mkdir -p "$root$(dirname "$library")"
        cp -L "$library" "$root$library"
    done
}

# `docker import` of the tree `$1` as image `$2`, with the config lines that follow.
import() {
    local root=$1 image=$2
    shift 2
    local changes=()
    for change in "$@"; do changes+=(--change "$change"); done
    tar --numeric-owner -C "$root" -c . | docker import "${changes[@]}" \
        --change "LABEL org.opencontainers.image.version=$version" \
        --change 'ENV PATH=/usr/local/bin' - "$image" >/dev/null
    printf '%s\t%s\n' "$image" "$(docker image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.1f MB", $1 / 1e6 }')"
}

for service in "${services[@]}"; do
    root="$work/$service"
    base_tree "$root"
    mkdir -p "$root/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
    # Debug info is for the build machine; the image carries the code.
    objcopy --strip-debug "$bin_dir/$service" "$root/usr/local/bin/$service"
    copy_libraries "$bin_dir/$service" "$root"
    [ "$service" = sandbox-runner ] && install -d -o 10001 -g 10001 "$root/sandbox"
    exposes=()
    for port in ${ports[$service]}; do exposes+=("EXPOSE $port"); done
    import "$root" "flamethread-$service:$tag" \
        'USER 10001:10001' \
        "ENTRYPOINT [\"/usr/local/bin/$service\"]" \
        "LABEL org.opencontainers.image.title=flamethread-$service" \
        "${exposes[@]}"
done

root="$work/nats"
base_tree "$root"
cp "$nats_server" "$root/usr/local/bin/nats-server"
install -d -o 10001 -g 10001 "$root/data"
import "$root" "flamethread-nats:$tag" \
    'USER 10001:10001' \
    'ENTRYPOINT ["/usr/local/bin/nats-server"]' \
    'LABEL org.opencontainers.image.title=flamethread-nats' \
    'EXPOSE 4222' 'EXPOSE 8222'

sandbox_image=${FT_SANDBOX_IMAGE:-flamethread-sandbox:py3}
if docker image inspect "$sandbox_image" >/dev/null 2>&1; then
    root="$work/sandbox-archive"
    base_tree "$root"
    cp "$(command -v cp)" "$root/usr/local/bin/cp"
    copy_libraries "$(command -v cp)" "$root"
    docker save -o "$root/sandbox-image.tar" "$sandbox_image"
    chmod 0644 "$root/sandbox-image.tar"
    import "$root" "flamethread-sandbox-archive:$tag" \
        'USER 10001:10001' \
        'ENTRYPOINT ["/usr/local/bin/cp", "/sandbox-image.tar", "/images/sandbox-image.tar"]' \
        'LABEL org.opencontainers.image.title=flamethread-sandbox-archive'
else
    log "no $sandbox_image here (deploy/sandbox/build-image.sh builds it): flamethread-sandbox-archive not built"
fi
