# syntax=docker/dockerfile:1
# One image for every billstream process; the command picks it (ingest, worker, api, topics, ...).
# Dependencies are pinned by constraints.txt, the same pins CI tests with.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY billstream ./billstream
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt .

FROM python:3.11-slim
# A container serves on its own interface (the host decides what is published): bind 0.0.0.0,
# not the laptop default 127.0.0.1.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INGEST_HOST=0.0.0.0 \
    WORKER_WEB_HOST=0.0.0.0 \
    API_HOST=0.0.0.0 \
    DRIFT_AUDIT_HOST=0.0.0.0 \
    RESOLVER_HOST=0.0.0.0
RUN groupadd --system --gid 10001 billstream \
 && useradd --system --uid 10001 --gid billstream --home-dir /app --shell /usr/sbin/nologin billstream \
 && mkdir -p /app/var/worker /app/var/api /app/var/backfill \
 && chown -R billstream:billstream /app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Relative defaults (var/worker, sqlite:///var/billstream.db) land in /app/var, owned by the user;
# named volumes mounted on /app/var/* start as copies of these directories, so they inherit it.
USER 10001:10001
ENTRYPOINT ["billstream"]
CMD ["--help"]
