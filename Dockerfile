# The prediction service: serving only, non-root, read-only root filesystem.
#
#   docker build -t conforto .                                   # online: wheels from PyPI
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp \
#     -v conforto-home:/var/lib/conforto -v "$PWD/model:/model:ro" \
#     -e CONFORTO_SERVE__MODEL_DIR=/model conforto
#
# Where the dependencies come from: ./wheelhouse when it holds wheels (`make wheelhouse`, which
# `make image` runs first: the build never reaches a package registry then), else PyPI, pinned by
# requirements-serve.lock (a plain `docker build .` on a fresh clone, whose wheelhouse holds only
# its README). Without either the build stops in its first step and says what to run. CI
# (`make test-image`) builds offline with `--build-arg BASE=<a local Debian image>`. The model
# gets in either baked in (`--build-arg MODEL_DIR=path/in/context`) or mounted at run time
# (CONFORTO_SERVE__MODEL_DIR, or the production pointer under a mounted CONFORTO_HOME). Writable
# paths: /var/lib/conforto (CONFORTO_HOME: the prediction log) and /tmp.

ARG BASE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: the wheel and its deps
FROM ${BASE} AS build
ARG WHEELS=wheelhouse
WORKDIR /src
COPY ${WHEELS}/ /wheels/
COPY pyproject.toml README.md requirements-serve.lock ./
COPY src/ src/
# /wheels holds setuptools too: the build stays offline when the wheelhouse is complete
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if compgen -G "/wheels/*.whl" >/dev/null; then from=(--no-index --find-links /wheels); \
    else from=(); echo "conforto: ./wheelhouse is empty: dependencies from PyPI (requirements-serve.lock)"; fi \
 && python3 -m venv /opt/conforto \
 && { /opt/conforto/bin/pip install --no-cache-dir --retries 1 --timeout 15 "${from[@]}" \
        --upgrade "setuptools>=75" \
      || { echo "conforto: no wheels in ./wheelhouse and no package index reachable: build with" \
             "network access, or run 'make image' (it fills ./wheelhouse with 'make wheelhouse'" \
             "and builds offline)" >&2; exit 1; }; } \
 && /opt/conforto/bin/pip wheel --no-cache-dir "${from[@]}" --no-deps \
      --no-build-isolation --wheel-dir /dist . \
 && /opt/conforto/bin/pip install --no-cache-dir "${from[@]}" -c requirements-serve.lock \
      /dist/conforto-*.whl \
 && /opt/conforto/bin/pip uninstall --yes setuptools pip \
 && find /opt/conforto -name '__pycache__' -prune -exec rm -rf {} + \
 && find /opt/conforto -path '*/tests' -prune -exec rm -rf {} + \
 && /opt/conforto/bin/python -m compileall -q -j 0 /opt/conforto

# ---------------------------------------------------------------- the models, when baked in
FROM ${BASE} AS model
ARG MODEL_DIR=
ARG CHALLENGER_DIR=
COPY ${MODEL_DIR:-deploy/no-model}/ /model-src/
COPY ${CHALLENGER_DIR:-deploy/no-model}/ /challenger-src/
RUN mkdir -p /model /challenger \
 && if [ -f /model-src/manifest.json ]; then cp -a /model-src/. /model/; fi \
 && if [ -f /challenger-src/manifest.json ]; then cp -a /challenger-src/. /challenger/; fi \
 && chmod -R a+rX,go-w /model /challenger

# ---------------------------------------------------------------- runtime
FROM ${BASE}
ARG MODEL_DIR=
ARG CHALLENGER_DIR=
# LightGBM needs OpenMP's runtime; the local base has it, the official slim image gets it here
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN if ! ldconfig -p | grep -q libgomp.so.1; then \
      apt-get update && apt-get install --yes --no-install-recommends libgomp1 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
LABEL org.opencontainers.image.title="conforto" \
      org.opencontainers.image.description="Predicts occupants' thermal sensation (cool / neutral / warm)."
RUN groupadd --system --gid 10001 conforto \
 && useradd --system --uid 10001 --gid conforto --home-dir /var/lib/conforto --no-create-home conforto \
 && install -d -o conforto -g conforto -m 0750 /var/lib/conforto
COPY --from=build /opt/conforto /opt/conforto
COPY --from=model /model /model
COPY --from=model /challenger /challenger
# a baked-in model is served; without one, CONFORTO_SERVE__MODEL_DIR or the production pointer;
# a baked-in challenger scores every request behind it, as a shadow
ENV PATH=/opt/conforto/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    CONFORTO_HOME=/var/lib/conforto \
    CONFORTO_SERVE__MODEL_DIR=${MODEL_DIR:+/model} \
    CONFORTO_SERVE__CHALLENGER__MODEL=${CHALLENGER_DIR:+/challenger}
USER 10001:10001
EXPOSE 8080
VOLUME ["/var/lib/conforto"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=2)"]
ENTRYPOINT ["conforto", "serve", "--host", "0.0.0.0"]
