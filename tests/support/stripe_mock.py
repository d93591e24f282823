"""stripe-mock for the Stripe API tools' tests: one server per session, on free loopback ports.

Under `make test` (BILLSTREAM_REQUIRE_SERVICES=1) a stripe-mock that cannot be installed or
started FAILS the tests; elsewhere they are skipped, so a green CI run really talked HTTP.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.children import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stripe-mock.sh"


@pytest.fixture(scope="session")
def stripe_mock() -> Iterator[str]:
    """The base URL of a running stripe-mock (`STRIPE_API_BASE` for the tools)."""
    port = free_port()
    try:
        subprocess.run([str(SCRIPT), "up", str(port)], check=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as error:
        message = f"stripe-mock could not be started: {error}"
        if os.environ.get("BILLSTREAM_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([str(SCRIPT), "down", str(port)], check=False)


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL with no server behind it: connection refused."""
    return f"http://127.0.0.1:{free_port()}"
