"""Counters with a bounded label set export every known value at 0 from start-up, and the known
sets are complete: every DLQ reason the code can raise is in DLQ_REASONS.

Without the zero series, `increase(billstream_dlq_total[5m])` has nothing to compare the first
dead letter after a restart with, and the alert never fires for it.
"""

from __future__ import annotations

import ast
import importlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from billstream import limits
from billstream.api.billing.metrics import BillingMetrics
from billstream.api.metrics import RESULTS, ApiMetrics
from billstream.drift import metrics as recovery
from billstream.drift.audit import FIELDS
from billstream.ingest.metrics import Endpoint, IngestMetrics, Rejection
from billstream.processors.dlq import DLQ_REASONS
from billstream.processors.metrics import ProcessorMetrics
from billstream.processors.ordering import RESOLUTIONS as TIE_RESOLUTIONS
from billstream.processors.payments import NOTICE_TYPES
from billstream.processors.reducer import SUBSCRIPTION_EVENT_TYPES
from billstream.processors.schedules import SCHEDULE_EVENT_TYPES
from billstream.processors.worker import build_worker
from tests.support.settings import SettingsFactory

PACKAGE = Path(__file__).resolve().parents[2] / "billstream"


def exported(registry: CollectorRegistry, name: str, label: str) -> dict[str, float]:
    """label value -> sample value of counter `name`, as a scrape right now would show it."""
    return {
        sample.labels[label]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def test_the_worker_exports_every_dlq_reason_and_subscription_type_at_zero() -> None:
    registry = CollectorRegistry()
    ProcessorMetrics(registry)
    assert exported(registry, "billstream_dlq_total", "reason") == dict.fromkeys(DLQ_REASONS, 0.0)
    types = exported(registry, "stripe_subscription_event_total", "type")
    assert types == dict.fromkeys(SUBSCRIPTION_EVENT_TYPES, 0.0)


def test_the_worker_exports_every_invoice_notice_and_schedule_type_at_zero() -> None:
    registry = CollectorRegistry()
    ProcessorMetrics(registry)
    notices = exported(registry, "stripe_invoice_notice_total", "type")
    assert notices == dict.fromkeys(NOTICE_TYPES, 0.0)
    schedules = exported(registry, "stripe_subscription_schedule_event_total", "type")
    assert schedules == dict.fromkeys(SCHEDULE_EVENT_TYPES, 0.0)
    assert "subscription_schedule.released" in schedules
    assert "other" in schedules


def test_the_worker_exports_every_plan_change_of_its_plan_order_at_zero(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(billing_plan_order="FREE,PRO,BUSINESS,ENTERPRISE")
    counter = build_worker(
        settings, CollectorRegistry()
    ).metrics.plan_changed  # as `worker` builds it
    samples = {
        (s.labels["from_plan"], s.labels["to_plan"]): s.value
        for family in counter.collect()
        for s in family.samples
        if s.name == "stripe_subscription_plan_changed_total"
    }
    pairs = itertools.permutations(settings.billing_plan_order, 2)
    assert samples == dict.fromkeys(pairs, 0.0)
    assert len(samples) == 12


def test_ingest_exports_every_rejection_reason_of_every_endpoint_at_zero() -> None:
    registry = CollectorRegistry()
    IngestMetrics(registry)
    rejected = {
        (sample.labels["endpoint"], sample.labels["reason"]): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "stripe_webhook_rejected_total"
    }
    assert rejected == {(e.value, r.value): 0.0 for e in Endpoint for r in Rejection}


def test_the_api_exports_every_message_result_at_zero() -> None:
    metrics = ApiMetrics.create()
    results = exported(metrics.registry, "billstream_api_state_messages_total", "result")
    assert results == dict.fromkeys(RESULTS, 0.0)


def test_the_periodic_recovery_exports_every_drift_field_and_run_result_at_zero() -> None:
    metrics = recovery.RecoveryMetrics.create()
    drift = exported(metrics.registry, "billstream_drift_accounts", "field")
    assert drift == dict.fromkeys(FIELDS, 0.0)
    runs = {
        (s.labels["job"], s.labels["result"]): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "billstream_recovery_runs_total"
    }
    assert runs == dict.fromkeys(itertools.product(recovery.JOBS, recovery.RESULTS), 0.0)


def test_dlq_reasons_are_unique() -> None:
    assert len(set(DLQ_REASONS)) == len(DLQ_REASONS)


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(relative.parts), ast.parse(path.read_text(), str(path))


def called(node: ast.AST, name: str) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == name) or (
        isinstance(func, ast.Attribute) and func.attr == name
    )


def reason_values(module_name: str, tree: ast.Module, exception: str) -> Iterator[object]:
    """The first argument of every `exception(...)` call: a constant's value, or the call itself
    when it re-raises `error.reason` inside `except LimitExceeded as error` (checked below)."""
    calls = [node for node in ast.walk(tree) if called(node, exception)]
    if not calls:
        return  # not imported: some modules only run under their tool (Alembic's env.py)
    module = importlib.import_module(module_name)
    limit_handlers = {
        id(call): handler.name
        for handler in ast.walk(tree)
        if isinstance(handler, ast.ExceptHandler)
        and isinstance(handler.type, ast.Name)
        and handler.type.id == "LimitExceeded"
        for call in ast.walk(handler)
    }
    for node in calls:
        assert isinstance(node, ast.Call)
        first = node.args[0]
        if isinstance(first, ast.Constant):
            yield first.value
        elif isinstance(first, ast.Name):
            yield getattr(module, first.id)
        elif (
            isinstance(first, ast.Attribute)
            and first.attr == "reason"
            and isinstance(first.value, ast.Name)
            and limit_handlers.get(id(node)) == first.value.id
        ):
            yield from limits.REASONS  # covered: every LimitExceeded reason is in REASONS
        else:
            pytest.fail(f"{module_name}:{node.lineno}: {exception} with an unknown reason")


def test_every_reason_the_code_can_dead_letter_is_in_dlq_reasons() -> None:
    raised = {
        value
        for name, tree in modules()
        for exception in ("InvalidEvent", "LimitExceeded")
        for value in reason_values(name, tree, exception)
    }
    assert {"not_json", "bad_type", "missing_key"} <= raised  # the scan finds the real calls
    assert set(limits.REASONS) <= set(DLQ_REASONS)
    assert raised - set(DLQ_REASONS) == set()


def test_the_handler_dead_letters_only_invalid_event_reasons_or_reducer_error() -> None:
    """The one `reason` that does not come from an InvalidEvent is the catch-all's."""
    from billstream.processors import handler

    source = ast.parse(Path(handler.__file__).read_text())
    reasons = [
        ast.unparse(call.args[2])
        for call in ast.walk(source)
        if isinstance(call, ast.Call) and called(call, "_dead_letter")
    ]
    assert sorted(reasons) == ["REDUCER_ERROR", "error.reason"]
    assert vars(handler)["REDUCER_ERROR"] in DLQ_REASONS  # the name the handler dead-letters with


def test_the_api_exports_every_change_kind_and_error_reason_at_zero() -> None:
    from billstream.api.billing.changes import KINDS
    from billstream.api.billing.errors import REASONS as CHANGE_ERRORS
    from billstream.api.billing.errors import BillingError

    metrics = ApiMetrics.create()
    BillingMetrics.create(metrics.registry)
    assert exported(metrics.registry, "stripe_subscription_change_total", "kind") == (
        dict.fromkeys(KINDS, 0.0)
    )
    reasons = exported(metrics.registry, "stripe_subscription_change_error_total", "reason")
    assert reasons == dict.fromkeys(CHANGE_ERRORS, 0.0)
    # every status a billing action answers with has its reason in the exported set
    for status in (400, 402, 404, 409, 422, 429, 503):
        assert BillingError(status, "e", "m").reason in CHANGE_ERRORS
    for name in ("stripe_subscription_preview_total", "stripe_checkout_session_created_total"):
        assert metrics.registry.get_sample_value(name) == 0.0


def test_the_worker_exports_every_tie_resolution_at_zero() -> None:
    registry = CollectorRegistry()
    ProcessorMetrics(registry)
    ties = exported(registry, "billstream_ordering_ties_total", "resolution")
    assert ties == dict.fromkeys(TIE_RESOLUTIONS, 0.0)
