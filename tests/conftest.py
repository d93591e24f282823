"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from billstream.settings import Settings
from tests.support.children import TEST_API_TOKEN
from tests.support.settings import SettingsFactory
from tests.support.stripe_mock import closed_port_url, stripe_mock  # noqa: F401  (shared fixtures)

# Fuzz tests leave max_examples to the profile: "ci" (default) keeps them to seconds, `make fuzz`
# selects "fuzz" (HYPOTHESIS_PROFILE=fuzz). Tests that set their own max_examples keep it.
hypothesis_settings.register_profile("ci", max_examples=150, deadline=None, print_blob=True)
hypothesis_settings.register_profile(
    "fuzz",
    max_examples=10_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
            "api_tokens": TEST_API_TOKEN,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return factory
