"""The domain loads without any runtime: verify, rebuild and the simulator fold events with it.

import-linter checks the import graph (`make lint`); this checks what a fresh interpreter really
loads, package `__init__` modules and third-party side imports included.
"""

from __future__ import annotations

import subprocess
import sys

DOMAIN = (
    "billstream.processors.reducer",
    "billstream.processors.steps",
    "billstream.tables.codec",
    "billstream.verify.rebuild",
    "billstream.simulate.expected",
)
RUNTIMES = ("faust", "mode", "aiokafka", "confluent_kafka", "aiohttp")


def test_importing_the_domain_loads_no_runtime() -> None:
    program = (
        f"import sys\nfor name in {DOMAIN!r}: __import__(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {RUNTIMES!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
