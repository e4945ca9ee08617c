#!/usr/bin/env bash
# Push the image `make image` built (conforto:latest, or $SOURCE) as $1 with the engine that
# built it (podman where it is, else docker), and print the pushed image's reference by digest
# (REPOSITORY@sha256:…), also written to build/image/pushed; the registry version of its baked
# model (label io.conforto.model.version) goes to build/image/model-version, its challenger's
# (io.conforto.challenger.version; empty without) to build/image/challenger-version. With
# REGISTRY_PASSWORD set (e.g. `gcloud auth print-access-token`), logs in to the registry first
# as REGISTRY_USER (default oauth2accesstoken, Artifact Registry's). REGISTRY_TLS_VERIFY=false:
# a registry over plain HTTP (a local one, for the tests).
#   deploy/image/push.sh REGISTRY/REPOSITORY/conforto:TAG
set -euo pipefail
target="${1:?usage: push.sh REGISTRY/REPOSITORY/NAME:TAG}"
registry="${target%%/*}"
tls=()
if command -v podman >/dev/null; then
  engine=(podman --storage-driver=overlay --runtime runc)
  [[ "${REGISTRY_TLS_VERIFY:-true}" == false ]] && tls=(--tls-verify=false)
else
  engine=(docker)
fi
if [[ -n "${REGISTRY_PASSWORD:-}" ]]; then
  printf '%s' "$REGISTRY_PASSWORD" | "${engine[@]}" login "${tls[@]}" \
    --username "${REGISTRY_USER:-oauth2accesstoken}" --password-stdin "$registry"
fi
"${engine[@]}" tag "${SOURCE:-conforto:latest}" "$target"
mkdir -p build/image
if [[ "${engine[0]}" == podman ]]; then
  "${engine[@]}" push "${tls[@]}" --quiet --digestfile build/image/digest "$target"
  digest="$(cat build/image/digest)"
else
  docker push --quiet "$target" >/dev/null
  digest="$(docker inspect --format '{{index .RepoDigests 0}}' "$target")"
  digest="${digest#*@}"
fi
# the registry versions of the models baked in (their labels; empty without), for the deploy
for baked in model challenger; do
  "${engine[@]}" image inspect --format "{{ index .Config.Labels \"io.conforto.$baked.version\" }}" \
    "$target" | sed 's/^<no value>$//' > "build/image/$baked-version"
done
echo "${target%:*}@$digest" | tee build/image/pushed
