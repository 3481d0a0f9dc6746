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
#
# Nothing is left behind untagged. With --layers every build step is cached as an image; the last image
# of a stage that the final image only copies from (rootfs, build) would be a dangling "<none>" image,
# so those two stages are built first under their own tags (IMAGE-rootfs, IMAGE-build: the build cache,
# reused by the full build), and whatever image one of the three tags named before and no longer names
# is removed (with its untagged parents), as are dangling images left by earlier builds of this
# Dockerfile (below). Other images, dangling or not, are never touched.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n 1)
revision=$(git -C "$ROOT" rev-parse HEAD 2> /dev/null || echo unknown)
volumes=()
if [[ -r $HOST_CA_BUNDLE ]]; then volumes+=(-v "$HOST_CA_BUNDLE:$HOST_CA_BUNDLE:ro"); fi
if [[ ${IMAGE##*/} == *:* ]]; then stage_prefix=$IMAGE-; else stage_prefix=$IMAGE:latest-; fi

image_id() { podman image inspect --format '{{.Id}}' "$1" 2> /dev/null || true; }

build() { # build TAG [--target STAGE]: buildah bud, then remove the image TAG named before, if replaced
    local tag=$1 old new
    shift
    old=$(image_id "$tag")
    if ! buildah bud --quiet --layers --force-rm --isolation chroot --network host "${volumes[@]}" \
        "${build_args[@]}" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" "$@" \
        -t "$tag" -f "$ROOT/Dockerfile" "$ROOT" >> "$log" 2>&1; then
        fail 1 "buildah bud ${*:-} failed"
    fi
    new=$(image_id "$tag")
    # Fails, harmlessly, when the old image is still used: by a container, a child image or another tag.
    if [[ -n $old && $old != "$new" ]]; then podman image rm "$old" >> "$log" 2>&1 || true; fi
}

build "${stage_prefix}rootfs" --target rootfs
build "${stage_prefix}build" --target build
build "$IMAGE"

# Leftovers of earlier builds of this Dockerfile: older versions of this script left the build stage
# untagged, and an interrupted build may too. Only dangling images (no tag, no child) whose build history
# installs the tool in /opt/update-gitops-repo are removed.
# Removing an image may leave its parent dangling in turn: repeat until nothing more goes.
removed=1
while ((removed)); do
    removed=0
    for id in $(podman images --quiet --filter dangling=true); do
        history=$(podman image inspect --format '{{range .History}}{{.CreatedBy}}{{"\n"}}{{end}}' "$id" \
            2> /dev/null || true)
        if [[ $history == */opt/update-gitops-repo* ]] && podman image rm "$id" >> "$log" 2>&1; then
            removed=1
        fi
    done
done

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
elapsed=$(($(date +%s) - started))
printf '%s %d MB (%d s)\n' "$IMAGE" $((size / 1000 / 1000)) "$elapsed"
