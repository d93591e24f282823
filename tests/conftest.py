"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from billstream.settings import Settings
from tests.stripe_mock import closed_port_url, stripe_mock  # noqa: F401  (shared fixtures)

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def unique_id() -> str:
    """A short id unique to this test, for topic prefixes, app ids and customer ids."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def make_settings(unique_id: str) -> SettingsFactory:
    """Settings isolated per test: own topic prefix and app id (consumer group), never the env."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "billstream_topic_prefix": f"t{unique_id}.",
            "billstream_app_id": f"billstream-test-{unique_id}",
            "stripe_webhook_secrets": "whsec_test_secret",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return factory
