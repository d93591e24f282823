"""The API version billstream sends on its own Stripe calls: pinned once, and the installed
stripe-python's own, so its typed objects describe what Stripe answers."""

from __future__ import annotations

from stripe._api_version import _ApiVersion

from billstream.stripe_client import STRIPE_API_VERSION
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import RecordingClient, client_for


def test_every_request_carries_the_pinned_stripe_version(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    transport = RecordingClient()
    client = client_for(
        make_settings(stripe_api_key="sk_test_pin", stripe_api_base=stripe_mock), transport
    )

    client.v1.subscriptions.list(params={"limit": 1})

    assert [s.headers.get("Stripe-Version") for s in transport.sent] == [STRIPE_API_VERSION]


def test_the_pin_is_the_installed_stripe_python_default() -> None:
    # Moving constraints.txt to a new stripe-python without moving the pin fails here.
    assert STRIPE_API_VERSION == _ApiVersion.CURRENT
