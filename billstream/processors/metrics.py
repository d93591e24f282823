"""Every processors metric of DESIGN.md "Metrics", and the effect → metric mapping.

prometheus_client appends `_total` to counter names. Labels are bounded (plans, event types,
DLQ reasons); never a customer id.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from billstream.processors import effects as fx
from billstream.processors.dlq import DLQ_REASONS
from billstream.processors.ordering import RESOLUTIONS as TIE_RESOLUTIONS
from billstream.processors.payments import NOTICE_TYPES
from billstream.processors.reducer import SUBSCRIPTION_EVENT_TYPES
from billstream.processors.schedules import SCHEDULE_EVENT_TYPES

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
# Time to recover or complete SCA: seconds (instant 3-D Secure) to weeks (dunning retries).
EPISODE_BUCKETS = (
    1.0, 10.0, MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
    DAY, 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY, 21 * DAY, 30 * DAY,
)  # fmt: skip
# Ingest → processed: milliseconds when live, hours when a backlog or backfill is replayed.
LAG_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 6 * HOUR, DAY,
)  # fmt: skip


class ProcessorMetrics:
    """The worker's metrics on one registry (tests pass a fresh one).

    Every counter with a bounded label set exports each known value at 0 from the start, so
    `increase()` and alerts see the first occurrence after a restart; `plans` (the settings'
    BILLING_PLAN_ORDER) bounds `stripe_subscription_plan_changed_total`.
    """

    def __init__(self, registry: CollectorRegistry, plans: Sequence[str] = ()) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.duplicates = counter("stripe_webhook_duplicate", "Events skipped as already applied")
        self.checkout_completed = counter("stripe_checkout_completed", "Checkouts completed")
        self.subscription_events = counter(
            "stripe_subscription_event", "Subscription events received", ("type",)
        )
        self.plan_changed = counter(
            "stripe_subscription_plan_changed", "Account plan changes", ("from_plan", "to_plan")
        )
        self.unknown_price = counter(
            "stripe_subscription_unknown_price", "Subscriptions with no price in BILLING_PLAN_MAP"
        )
        self.invoice_paid = counter("stripe_invoice_paid", "Invoices that became paid")
        self.invoice_failed = counter("stripe_invoice_failed", "Failed invoice payment attempts")
        self.invoice_action_required = counter(
            "stripe_invoice_action_required", "Invoice payments that required customer action"
        )
        self.invoice_partially_paid = counter(
            "stripe_invoice_partially_paid", "Payment events of invoices with an amount remaining"
        )
        self.invoice_notices = counter(
            "stripe_invoice_notice", "Invoice events counted without a state change", ("type",)
        )
        self.schedule_events = counter(
            "stripe_subscription_schedule_event", "Subscription schedule events received", ("type",)
        )
        self.dunning_entered = counter("stripe_dunning_entered", "Dunning episodes opened")
        self.dunning_recovered = counter("stripe_dunning_recovered", "Dunning episodes recovered")
        self.dunning_lost = counter("stripe_dunning_lost", "Dunning episodes lost")
        self.dunning_recovery_seconds = Histogram(
            "stripe_dunning_recovery_seconds",
            "First failure to payment, in event time",
            buckets=EPISODE_BUCKETS,
            registry=registry,
        )
        self.sca_entered = counter("stripe_sca_entered", "SCA episodes opened")
        self.sca_completed = counter("stripe_sca_completed", "SCA episodes completed")
        self.sca_lost = counter("stripe_sca_lost", "SCA episodes lost")
        self.sca_completion_seconds = Histogram(
            "stripe_sca_completion_seconds",
            "First action request to payment, in event time",
            buckets=EPISODE_BUCKETS,
            registry=registry,
        )
        self.downgrade_scheduled = counter(
            "stripe_subscription_downgrade_scheduled", "Lower-tier pending plans scheduled"
        )
        self.downgrades_applied = counter(
            "stripe_subscription_downgrade_applied", "Deferred downgrades applied by reconcile"
        )
        self.reconcile_runs = counter("stripe_subscription_reconcile_run", "Reconcile runs")
        self.reconcile_errors = counter("stripe_subscription_reconcile_error", "Reconcile errors")
        self.ordering_ties = counter(
            "billstream_ordering_ties",
            "Same-second subscription events, by the rule that ordered them",
            ("resolution",),
        )
        self.dlq = counter("billstream_dlq", "Events sent to the dead-letter topic", ("reason",))
        self.event_lag = Histogram(
            "billstream_event_lag_seconds",
            "Processed time minus the record's received-at header",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        # Effect type -> what it counts: a lookup by type (a match would try each case in turn).
        # AccountChanged and Stale are published or logged, not counted.
        self._increments: dict[type[fx.Effect], Callable[[], None]] = {
            fx.Duplicate: self.duplicates.inc,
            fx.CheckoutCompleted: self.checkout_completed.inc,
            fx.UnknownPrice: self.unknown_price.inc,
            fx.InvoicePaid: self.invoice_paid.inc,
            fx.InvoiceFailed: self.invoice_failed.inc,
            fx.InvoiceActionRequired: self.invoice_action_required.inc,
            fx.InvoicePartiallyPaid: self.invoice_partially_paid.inc,
            fx.DunningEntered: self.dunning_entered.inc,
            fx.DunningLost: self.dunning_lost.inc,
            fx.ScaEntered: self.sca_entered.inc,
            fx.ScaLost: self.sca_lost.inc,
            fx.DowngradeScheduled: self.downgrade_scheduled.inc,
        }
        self._counts = self._effect_counts()
        self._export_known_labels(plans)

    def _export_known_labels(self, plans: Sequence[str]) -> None:
        for reason in DLQ_REASONS:
            self.dlq.labels(reason)
        for resolution in TIE_RESOLUTIONS:
            self.ordering_ties.labels(resolution)
        for event_type in SUBSCRIPTION_EVENT_TYPES:
            self.subscription_events.labels(event_type)
        for event_type in NOTICE_TYPES:
            self.invoice_notices.labels(event_type)
        for event_type in SCHEDULE_EVENT_TYPES:
            self.schedule_events.labels(event_type)
        for from_plan, to_plan in itertools.permutations(plans, 2):
            self.plan_changed.labels(from_plan, to_plan)

    def record(self, effects: Iterable[fx.Effect]) -> None:
        """Count what one applied event caused."""
        increments, counts = self._increments, self._counts
        for effect in effects:
            increment = increments.get(type(effect))
            if increment is not None:
                increment()
            elif (count := counts.get(type(effect))) is not None:
                count(effect)

    def _effect_counts(self) -> dict[type[fx.Effect], Callable[[Any], None]]:
        """The effects whose count needs their fields (labels, histogram observations)."""
        subscription_events = LabelledChildren(self.subscription_events)
        plan_changed = LabelledChildren(self.plan_changed)
        invoice_notices = LabelledChildren(self.invoice_notices)
        schedule_events = LabelledChildren(self.schedule_events)
        ties = LabelledChildren(self.ordering_ties)

        def dunning_recovered(effect: fx.DunningRecovered) -> None:
            self.dunning_recovered.inc()
            self.dunning_recovery_seconds.observe(effect.seconds)

        def sca_completed(effect: fx.ScaCompleted) -> None:
            self.sca_completed.inc()
            self.sca_completion_seconds.observe(effect.seconds)

        return {
            fx.SubscriptionEvent: lambda e: subscription_events(e.type).inc(),
            fx.PlanChanged: lambda e: plan_changed(e.from_plan, e.to_plan).inc(),
            fx.InvoiceNotice: lambda e: invoice_notices(e.type).inc(),
            fx.ScheduleEvent: lambda e: schedule_events(e.type).inc(),
            fx.OrderingTie: lambda e: ties(e.resolution).inc(),
            fx.DunningRecovered: dunning_recovered,
            fx.ScaCompleted: sca_completed,
        }


class LabelledChildren:
    """`counter.labels(*values)`, remembered: prometheus_client's lookup costs more than `inc`.

    Label values are bounded (plans, event types), so the cache is too.
    """

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self._children: dict[tuple[str, ...], Counter] = {}

    def __call__(self, *values: str) -> Counter:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.counter.labels(*values)
        return child
