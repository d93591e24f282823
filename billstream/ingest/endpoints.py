"""Which webhook endpoint verifies with which secrets, and whose events it may carry.

Stripe signs a Connect endpoint's deliveries with that endpoint's own secret. Binding each
secret to its path, and each path to the events it may carry, means a body verified by one
endpoint's secret is accepted only there: the platform endpoint takes the platform's own
events (no `account`, or STRIPE_ACCOUNT_ID), the Connect endpoint only connected accounts'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billstream.routing import connected_account
from billstream.settings import Settings

PLATFORM_PATH = "/webhooks/stripe"
CONNECT_PATH = "/webhooks/stripe/connect"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One webhook path: its secrets and whether it carries connected accounts' events."""

    path: str
    secrets: tuple[str, ...]
    connect: bool
    platform: str | None = None

    def accepts(self, account: Any) -> bool:
        """Whether an event of `account` (its top-level field) belongs on this endpoint."""
        return (connected_account(account, self.platform) is not None) == self.connect


PLATFORM_ENDPOINT = Endpoint(PLATFORM_PATH, (), connect=False)  # no STRIPE_ACCOUNT_ID


def endpoints(settings: Settings) -> tuple[Endpoint, ...]:
    """The platform endpoint, and the Connect one when STRIPE_CONNECT_WEBHOOK_SECRETS is set."""
    platform = settings.stripe_account_id
    found = [Endpoint(PLATFORM_PATH, settings.webhook_secret_values(), False, platform)]
    if settings.stripe_connect_webhook_secrets:
        connect = settings.connect_webhook_secret_values()
        found.append(Endpoint(CONNECT_PATH, connect, True, platform))
    return tuple(found)
