"""The billing actions' counters (DESIGN.md, "Metrics"), in the api's registry, zero at start-up.

`stripe_subscription_downgrade_scheduled_total` is the worker's (counted when the webhook shows
the pending plan): the api counts its downgrades as `stripe_subscription_change_total{kind=
"downgrade"}` rather than export a second series of the same name that dashboards would add up.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from billstream.api.billing.changes import KINDS
from billstream.api.billing.errors import REASONS


@dataclass(frozen=True)
class BillingMetrics:
    previews: Counter
    changes: Counter
    change_errors: Counter
    checkout_sessions: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BillingMetrics:
        metrics = cls(
            previews=Counter(
                "stripe_subscription_preview",
                "plan change previews answered",
                registry=registry,
            ),
            changes=Counter(
                "stripe_subscription_change",
                "plan changes applied or scheduled through the api, by kind",
                ["kind"],
                registry=registry,
            ),
            change_errors=Counter(
                "stripe_subscription_change_error",
                "plan changes and previews refused or failed, by reason",
                ["reason"],
                registry=registry,
            ),
            checkout_sessions=Counter(
                "stripe_checkout_session_created",
                "Checkout sessions created (replays of a retried request not counted)",
                registry=registry,
            ),
        )
        for kind in KINDS:
            metrics.changes.labels(kind)
        for reason in REASONS:
            metrics.change_errors.labels(reason)
        return metrics
