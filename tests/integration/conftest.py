"""The real broker for integration tests: reused when running, started otherwise.

Under `make test` (BILLSTREAM_REQUIRE_SERVICES=1) a missing broker FAILS the tests; it never
skips them, so a green run always means the pipeline really ran through Kafka.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.kafka import broker_answers
from tests.support.private_broker import PrivateBroker

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka" / "kafka.sh"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    started = False
    if not asyncio.run(broker_answers(bootstrap)):
        if os.environ.get("BILLSTREAM_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Kafka broker at {bootstrap} is not reachable (make test starts it)")
        subprocess.run([str(KAFKA_SCRIPT), "up"], check=True)
        started = True
    yield bootstrap
    if started:
        subprocess.run([str(KAFKA_SCRIPT), "down"], check=False)


@pytest.fixture
def private_broker() -> Iterator[PrivateBroker]:
    """A started broker on free ports that a test may stop and start; removed afterwards."""
    broker = PrivateBroker.on_free_ports()
    try:
        broker.start()
        yield broker
    finally:
        broker.remove()
