"""Processor metrics: the contract's names and labels, and what each effect counts."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from billstream.processors import effects as fx
from billstream.processors.metrics import ProcessorMetrics
from tests.support.factories import invoice_event, subscription_event
from tests.unit.processors.support import fold

# DESIGN.md "Metrics", processors part: exposition name -> label names.
CONTRACT: dict[str, tuple[str, ...]] = {
    "stripe_webhook_duplicate_total": (),
    "stripe_checkout_completed_total": (),
    "stripe_subscription_event_total": ("type",),
    "stripe_subscription_plan_changed_total": ("from_plan", "to_plan"),
    "stripe_subscription_unknown_price_total": (),
    "stripe_invoice_paid_total": (),
    "stripe_invoice_failed_total": (),
    "stripe_invoice_action_required_total": (),
    "stripe_invoice_partially_paid_total": (),
    "stripe_invoice_notice_total": ("type",),
    "stripe_subscription_schedule_event_total": ("type",),
    "stripe_dunning_entered_total": (),
    "stripe_dunning_recovered_total": (),
    "stripe_dunning_lost_total": (),
    "stripe_dunning_recovery_seconds": (),
    "stripe_sca_entered_total": (),
    "stripe_sca_completed_total": (),
    "stripe_sca_lost_total": (),
    "stripe_sca_completion_seconds": (),
    "stripe_subscription_downgrade_scheduled_total": (),
    "stripe_subscription_downgrade_applied_total": (),
    "stripe_subscription_reconcile_run_total": (),
    "stripe_subscription_reconcile_error_total": (),
    "billstream_dlq_total": ("reason",),
    "billstream_ordering_ties_total": ("resolution",),
    "billstream_event_lag_seconds": (),
}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ProcessorMetrics:
    return ProcessorMetrics(registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_every_contract_metric_is_declared_with_its_labels(
    registry: CollectorRegistry, metrics: ProcessorMetrics
) -> None:
    metrics.subscription_events.labels(type="customer.subscription.created")
    metrics.plan_changed.labels(from_plan="FREE", to_plan="PRO")
    metrics.dlq.labels(reason="bad_type")
    exposed = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name.endswith(("_total", "_count")):
                name = sample.name.removesuffix("_count")
                exposed[name] = tuple(sorted(k for k in sample.labels if k != "le"))

    assert exposed == {name: tuple(sorted(labels)) for name, labels in CONTRACT.items()}


def test_attributes_for_other_parts_of_the_worker(
    registry: CollectorRegistry, metrics: ProcessorMetrics
) -> None:
    metrics.duplicates.inc()
    metrics.dlq.labels(reason="not_json").inc()
    metrics.event_lag.observe(0.2)
    metrics.reconcile_runs.inc()
    metrics.reconcile_errors.inc()
    metrics.downgrades_applied.inc()

    assert value(registry, "stripe_webhook_duplicate_total") == 1
    assert value(registry, "billstream_dlq_total", reason="not_json") == 1
    assert value(registry, "billstream_event_lag_seconds_count") == 1
    assert value(registry, "stripe_subscription_reconcile_run_total") == 1
    assert value(registry, "stripe_subscription_reconcile_error_total") == 1
    assert value(registry, "stripe_subscription_downgrade_applied_total") == 1


def test_record_maps_each_effect_to_its_metric(
    registry: CollectorRegistry, metrics: ProcessorMetrics
) -> None:
    metrics.record(
        [
            fx.Duplicate("evt_1"),
            fx.CheckoutCompleted(),
            fx.SubscriptionEvent("customer.subscription.updated"),
            fx.PlanChanged("FREE", "PRO"),
            fx.UnknownPrice("sub_1", "x"),
            fx.InvoicePaid("in_1"),
            fx.InvoiceFailed("in_1"),
            fx.InvoiceActionRequired("in_1"),
            fx.InvoicePartiallyPaid("in_3"),
            fx.InvoiceNotice("invoice.overdue"),
            fx.ScheduleEvent("subscription_schedule.released"),
            fx.DunningEntered("in_1"),
            fx.DunningRecovered("in_1", 7200),
            fx.DunningLost("in_2"),
            fx.ScaEntered("in_1"),
            fx.ScaCompleted("in_1", 30),
            fx.ScaLost("in_2"),
            fx.DowngradeScheduled("sub_1", "BUSINESS", "PRO"),
            fx.Stale("sub_1"),
            fx.AccountChanged({"customer_id": "cus_1"}),
            fx.OrderingTie("previous_attributes"),
            fx.SubscriptionRefetch("cus_1", "sub_1", 100),
        ]
    )

    for name in CONTRACT:
        if name.endswith("_total") and name not in {
            "stripe_subscription_event_total",
            "stripe_subscription_plan_changed_total",
            "stripe_invoice_notice_total",
            "stripe_subscription_schedule_event_total",
            "billstream_dlq_total",
            "billstream_ordering_ties_total",
            "stripe_subscription_downgrade_applied_total",
            "stripe_subscription_reconcile_run_total",
            "stripe_subscription_reconcile_error_total",
        }:
            assert value(registry, name) == 1, name
    assert (
        value(registry, "stripe_subscription_event_total", type="customer.subscription.updated")
        == 1
    )
    assert value(registry, "billstream_ordering_ties_total", resolution="previous_attributes") == 1
    assert value(registry, "billstream_ordering_ties_total", resolution="later_delivery") == 0
    assert (
        value(registry, "stripe_subscription_plan_changed_total", from_plan="FREE", to_plan="PRO")
        == 1
    )
    assert value(registry, "stripe_invoice_notice_total", type="invoice.overdue") == 1
    assert (
        value(
            registry,
            "stripe_subscription_schedule_event_total",
            type="subscription_schedule.released",
        )
        == 1
    )
    assert value(registry, "stripe_dunning_recovery_seconds_sum") == 7200
    assert value(registry, "stripe_sca_completion_seconds_sum") == 30
    assert value(registry, "stripe_subscription_downgrade_applied_total") == 0


def test_a_dunning_story_counts_one_episode(
    registry: CollectorRegistry, metrics: ProcessorMetrics
) -> None:
    _, effects = fold(
        [
            subscription_event("customer.subscription.created", created=0),
            invoice_event("invoice.payment_failed", created=1_000),
            invoice_event("invoice.payment_failed", created=90_000),
            invoice_event("invoice.paid", created=3 * 86400),
        ]
    )
    metrics.record(effects)

    assert value(registry, "stripe_invoice_failed_total") == 2
    assert value(registry, "stripe_dunning_entered_total") == 1
    assert value(registry, "stripe_dunning_recovered_total") == 1
    assert value(registry, "stripe_dunning_recovery_seconds_bucket", le="259200.0") == 1
    assert value(registry, "stripe_dunning_recovery_seconds_bucket", le="172800.0") == 0


def test_no_metric_is_labelled_by_customer(
    registry: CollectorRegistry, metrics: ProcessorMetrics
) -> None:
    _, effects = fold([subscription_event("customer.subscription.created", created=0)])
    metrics.record(effects)

    text = generate_latest(registry).decode()
    assert "cus_test1" not in text
    assert "sub_test1" not in text
