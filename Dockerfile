# syntax=docker/dockerfile:1.7
# Ursa's image for distributed mode: one image runs every process,
#   docker run IMAGE            -> `ursa web` (the default CMD)
#   docker run IMAGE worker     -> `ursa worker`   (also: scheduler, migrate, users create, ...)
# Build: docker build --build-arg RELEASE="$(git rev-parse HEAD)" -t ursa .
#
# The builder installs the locked dependencies with uv into /app/.venv; the runtime stage gets
# only that venv and the app's sources on the same slim Python base: no uv, no compiler, no
# package-manager run.

# Both stages use the same base (the venv's interpreter links to its python3.11).
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Compile bytecode at build time (the runtime never writes it); copy rather than hard-link out
# of the cache mount; use the base image's interpreter, never a downloaded one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# chDB (the embedded ClickHouse engine, ~500 MB) is left out: this image talks to a ClickHouse
# server (CLICKHOUSE_URL); only `ursa serve` on the embedded defaults needs chDB, and without it
# an empty CLICKHOUSE_URL fails at the first query with "requires the chdb package". pandas is
# installed only because chDB requires it. `--no-install-package` keeps uv.lock untouched.
# Dependencies first, in their own layer: it is rebuilt only when uv.lock or pyproject.toml change.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project \
        --no-install-package chdb --no-install-package chdb-core --no-install-package pandas
COPY pyproject.toml uv.lock README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# The project itself, editable: app/server/startup.py finds alembic.ini and migrations/ next to app/.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
        --no-install-package chdb --no-install-package chdb-core --no-install-package pandas \
    && /app/.venv/bin/python -m compileall -q --invalidation-mode checked-hash app migrations

FROM ${PYTHON_IMAGE} AS runtime
ARG PYTHON_IMAGE
ARG RELEASE=dev
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="Ursa" \
      org.opencontainers.image.description="Privacy-friendly web analytics and web-performance monitoring." \
      org.opencontainers.image.licenses="AGPL-3.0-only" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.version="${RELEASE}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A fixed, unprivileged UID/GID (Kubernetes: runAsNonRoot, runAsUser 10001, fsGroup 10001).
# URSA_DATA_DIR is the only writable path the app needs (the outbox when SMTP_URL is empty).
RUN groupadd --system --gid 10001 ursa \
    && useradd --system --no-log-init --uid 10001 --gid ursa \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ursa \
    && install --directory --owner ursa --group ursa --mode 0750 /var/lib/ursa

WORKDIR /app
# Code and venv stay owned by root: the app cannot modify itself.
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/app /app/app
COPY --from=builder /app/migrations /app/migrations
COPY --from=builder /app/alembic.ini /app/alembic.ini

# HOST: listen on every interface of the container (the default 127.0.0.1 is for laptops).
# RELEASE tags Sentry errors and traces with the image's version.
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    URSA_DATA_DIR=/var/lib/ursa \
    HOST=0.0.0.0 \
    PORT=8000 \
    METRICS_PORT=8001 \
    RELEASE=${RELEASE}

# 8000: the public web port. 8001: the internal port (machine endpoints, Prometheus metrics),
# never routed by the ingress.
EXPOSE 8000 8001

USER 10001:10001

# No HEALTHCHECK on purpose: Kubernetes ignores it; the manifests declare liveness and readiness
# probes on /healthz and /readyz, per process kind, which one image-wide command could not.
ENTRYPOINT ["ursa"]
CMD ["web"]
