"""Shared helpers for tests that run billstream services as child processes."""

from __future__ import annotations

import os
import socket

from pydantic import SecretStr

from billstream.settings import Settings

# The read API's bearer token in tests (`make_settings` sets it as API_TOKENS).
TEST_API_TOKEN = "test-api-token-0123456789"


def bearer(settings: Settings) -> dict[str, str]:
    """The `Authorization` header a client of the api built from `settings` sends (or none)."""
    tokens = settings.api_token_values()
    return {"Authorization": f"Bearer {tokens[0]}"} if tokens else {}


def free_port() -> int:
    """An ephemeral port nobody listens on right now (never the fixed dev ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
