"""Shared helpers for tests that run billstream services as child processes."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

from pydantic import SecretStr

from billstream.settings import Settings

# The read API's bearer token in tests (`make_settings` sets it as API_TOKENS).
TEST_API_TOKEN = "test-api-token-0123456789"


def bearer(settings: Settings) -> dict[str, str]:
    """The `Authorization` header a client of the api built from `settings` sends (or none)."""
    tokens = settings.api_token_values()
    return {"Authorization": f"Bearer {tokens[0]}"} if tokens else {}


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return int(low), int(high)


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now, below the kernel's ephemeral range, never handed out before.

    Below the range because tests stop and restart servers (brokers, workers) on their port:
    while one is down, an ephemeral port would be free for any outgoing connection (a client
    reconnecting to the dead broker takes a new one each try) to take as its local port, and the
    restart would fail to bind it. Never the fixed dev ports (9092, 8080, ...: below 10000).
    """
    low = 10_000
    high = min(_ephemeral_range()[0], 65_536) - 1
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{high}")


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(_env_value(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The caller's environment with EVERY setting of `settings` made explicit, plus `extra`.

    A child built from this environment sees exactly the test's settings, whatever the
    surrounding shell exports.
    """
    env = dict(os.environ)
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            env.pop(name.upper(), None)
        else:
            env[name.upper()] = _env_value(value)
    env.update(extra)
    return env
