#!/usr/bin/env bash
# `make test`: services the suite needs (Kafka; PostgreSQL when installed), then pytest.
# Integration tests fail (never skip) without them: BILLSTREAM_REQUIRE_SERVICES=1.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export BILLSTREAM_REQUIRE_SERVICES=1
export PYTHONDONTWRITEBYTECODE=1
exec scripts/with-kafka.sh .venv/bin/pytest -p no:cacheprovider "$@"
