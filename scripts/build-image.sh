#!/usr/bin/env bash
# Build the update-gitops-repo container image without a Docker engine and without Docker Hub:
# buildah builds it FROM a Debian base made locally with debootstrap (cached as a podman image).
#
#   scripts/build-image.sh                 # -> localhost/update-gitops-repo:dev
#   IMAGE=localhost/x:y scripts/build-image.sh
#   PUBLIC_BASE=1 scripts/build-image.sh   # build FROM the Dockerfile's default public base instead
#
# Idempotent and quiet: it installs what is missing (apt), reuses the base image and the build cache,
# prints one line (image, size, time) on success and the log tail on failure.
# Exit status: 0 built; 1 build failed; 3 buildah/podman missing and cannot be installed.
set -euo pipefail

IMAGE=${IMAGE:-localhost/update-gitops-repo:dev}
BASE_PACKAGES=python3,python3-venv,git,ca-certificates,gnupg
# The tag names the package list, so that changing it makes a new base instead of reusing the old one.
BASE_IMAGE=${BASE_IMAGE:-localhost/update-gitops-repo-base:bookworm-$(printf '%s' "$BASE_PACKAGES" | sha1sum | cut -c1-8)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

started=$(date +%s)
log=$(mktemp -t build-image.XXXXXX.log)
tmp_rootfs=""
cleanup() {
    if [[ -n $tmp_rootfs ]]; then rm -rf "$tmp_rootfs"; fi
    rm -f "$log"
}
trap cleanup EXIT

fail() {
    local status=$1
    shift
    echo "build-image: $*" >&2
    if [[ -s $log ]]; then
        echo "--- last lines of the log ---" >&2
        tail -n 40 "$log" >&2
    fi
    exit "$status"
}

# Several test processes may ask for the image at once: one builds, the others wait and reuse it.
exec 9> "${TMPDIR:-/tmp}/update-gitops-repo-build-image.lock"
flock 9

# 1. Tools. Debian's buildah/podman work here; `podman build` does not (hybrid cgroups), buildah does.
need=()
for tool in buildah podman runc fuse-overlayfs newuidmap; do
    command -v "$tool" > /dev/null || need+=("$tool")
done
if [[ -z ${PUBLIC_BASE:-} ]] && ! command -v debootstrap > /dev/null; then need+=(debootstrap); fi
if ((${#need[@]})); then
    if [[ $(id -u) != 0 ]] || ! command -v apt-get > /dev/null; then
        fail 3 "missing ${need[*]} and cannot install them (needs root and apt-get)"
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq buildah podman runc debootstrap fuse-overlayfs uidmap; } \
        >> "$log" 2>&1; then
        fail 3 "apt-get install of buildah/podman failed"
    fi
fi

# 2. The base image: Debian bookworm with Debian's python3 (3.11), venv, git, CA certificates, gnupg.
build_args=()
if [[ -z ${PUBLIC_BASE:-} ]]; then
    if ! podman image exists "$BASE_IMAGE"; then
        tmp_rootfs=$(mktemp -d -t update-gitops-repo-rootfs.XXXXXX)
        debootstrap --variant=minbase --include="$BASE_PACKAGES" \
            bookworm "$tmp_rootfs" "$DEBIAN_MIRROR" >> "$log" 2>&1 || fail 1 "debootstrap failed"
        # What the public slim images leave out too: package caches, indexes, docs, man pages, locales
        # (keeping the copyright files).
        rm -rf "$tmp_rootfs"/var/cache/apt/archives/*.deb "$tmp_rootfs"/var/lib/apt/lists/* \
            "$tmp_rootfs"/usr/share/man "$tmp_rootfs"/usr/share/info "$tmp_rootfs"/usr/share/locale \
            "$tmp_rootfs"/var/log/*.log "$tmp_rootfs"/var/cache/debconf/*-old
        find "$tmp_rootfs"/usr/share/doc -type f ! -name copyright -delete
        tar -C "$tmp_rootfs" -c . | podman import --quiet - "$BASE_IMAGE" >> "$log" 2>&1 \
            || fail 1 "podman import of the base failed"
        rm -rf "$tmp_rootfs"
        tmp_rootfs=""
    fi
    build_args+=(--build-arg "BASE=$BASE_IMAGE")
fi

# 3. The image. chroot isolation and the host network: no cgroups or network namespaces needed.
# pip inside the build verifies PyPI with the host's CA bundle.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n 1)
revision=$(git -C "$ROOT" rev-parse HEAD 2> /dev/null || echo unknown)
volumes=()
if [[ -r $HOST_CA_BUNDLE ]]; then volumes+=(-v "$HOST_CA_BUNDLE:$HOST_CA_BUNDLE:ro"); fi
if ! buildah bud --quiet --layers --isolation chroot --network host "${volumes[@]}" \
    "${build_args[@]}" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >> "$log" 2>&1; then
    fail 1 "buildah bud failed"
fi

# Every source change leaves the previous image and build stage untagged; keep a day of them (the
# layer cache) and drop the rest, so that a machine that builds often does not fill up.
podman image prune --force --filter until=24h >> "$log" 2>&1 || true

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
elapsed=$(($(date +%s) - started))
printf '%s %d MB (%d s)\n' "$IMAGE" $((size / 1000 / 1000)) "$elapsed"
