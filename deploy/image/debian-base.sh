#!/usr/bin/env bash
# A local base image for offline builds: Debian bookworm (minbase) with python3, python3-venv and
# libgomp1 (LightGBM's OpenMP runtime), made with debootstrap from Debian's mirror and imported
# into podman as $IMAGE. Kept in podman's storage, so later runs on the same machine reuse it; a
# change of this script makes it anew (its tag carries the script's hash), as does --rebuild.
#   deploy/image/debian-base.sh [--rebuild]
set -euo pipefail
IMAGE="${IMAGE:-localhost/conforto-base:bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
PODMAN=(podman --storage-driver=overlay --runtime runc)

key="$IMAGE-$(sha256sum "$0" | cut -c1-12)"
if [[ "${1:-}" != "--rebuild" ]] && "${PODMAN[@]}" image exists "$key"; then
  "${PODMAN[@]}" tag "$key" "$IMAGE"
  echo "$IMAGE: cached ($key)"
  exit 0
fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1 \
  bookworm "$root" "$MIRROR" >/dev/null
# what a runtime never reads: package caches, documentation, translations
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
tar -C "$root" -c . | "${PODMAN[@]}" import --quiet --change 'CMD ["python3"]' - "$key" >/dev/null
"${PODMAN[@]}" tag "$key" "$IMAGE"
echo "$IMAGE: built ($key)"
