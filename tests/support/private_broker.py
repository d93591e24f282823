"""A broker of one's own on free ports, for tests that stop and restart it (not the shared one)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.children import free_port

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka" / "kafka.sh"
KAFKA_HOME = ROOT / "var" / "kafka"


def free_ports(count: int) -> list[int]:
    """Distinct free ports outside the ephemeral range, so a restarted broker can bind again."""
    return [free_port() for _ in range(count)]


@dataclass(frozen=True)
class PrivateBroker:
    """`kafka.sh` on its own ports; data, pid and config live under var/kafka per port.

    `start()` and `stop()` block for seconds: from async tests call them via `asyncio.to_thread`.
    """

    port: int
    controller_port: int
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # more kafka.sh variables

    @classmethod
    def on_free_ports(cls) -> PrivateBroker:
        port, controller_port = free_ports(2)
        return cls(port, controller_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart, keeping its data) and wait until it answers metadata requests."""
        self._script("up")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after 30 s)."""
        self._script("down")

    def remove(self) -> None:
        """Stop and delete its data, config and log."""
        self._script("reset")
        for leftover in (f"server-{self.port}.properties", f"logs/server-{self.port}.log"):
            (KAFKA_HOME / leftover).unlink(missing_ok=True)

    def _script(self, action: str) -> None:
        env = dict(os.environ) | dict(self.env)
        env["KAFKA_PORT"] = str(self.port)
        env["KAFKA_CONTROLLER_PORT"] = str(self.controller_port)
        subprocess.run([str(KAFKA_SCRIPT), action], env=env, check=True, timeout=180)
