"""`billstream drift-audit`'s loop: a failed run is counted and makes /readyz 503 until a run
succeeds; the drift gauges are replaced by each audit, never summed; `make dev` runs it only
when configured."""

from __future__ import annotations

import asyncio

from pytest_aiohttp import AiohttpClient

from billstream.dev import default_services
from billstream.drift.audit import Difference
from billstream.drift.auditor import Audit
from billstream.drift.metrics import RecoveryMetrics
from billstream.drift.service import Job, build_app
from tests.support.settings import SettingsFactory


async def test_a_failed_run_is_counted_and_unready_until_one_succeeds(
    aiohttp_client: AiohttpClient,
) -> None:
    metrics = RecoveryMetrics.create()
    started = [asyncio.Event() for _ in range(3)]  # runs 1, 2 and 3 began
    finish_second = asyncio.Event()
    calls = 0

    async def run() -> None:
        nonlocal calls
        calls += 1
        started[min(calls, 3) - 1].set()
        if calls == 1:
            raise RuntimeError("the api answered 500")
        if calls == 2:
            await finish_second.wait()

    job = Job("drift_audit", 0.01, run)
    client = await aiohttp_client(build_app([job], metrics))
    await started[1].wait()  # the first run failed, the second is under way
    assert (await client.get("/readyz")).status == 503
    errors = {"job": "drift_audit", "result": "error"}
    assert metrics.registry.get_sample_value("billstream_recovery_runs_total", errors) == 1
    finish_second.set()
    await started[2].wait()  # the second run succeeded
    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/healthz")).status == 200


def test_each_audit_replaces_the_drift_gauges() -> None:
    metrics = RecoveryMetrics.create()
    found = [Difference("cus_1", "plan", "PRO", None), Difference("cus_2", "plan", "FREE", "PRO")]
    metrics.observe_audit(Audit(3, 3, found, 1.5), clock=lambda: 100.0)
    value = metrics.registry.get_sample_value
    assert value("billstream_drift_accounts", {"field": "plan"}) == 2
    metrics.observe_audit(Audit(3, 3, [], 0.5), clock=lambda: 200.0)
    assert value("billstream_drift_accounts", {"field": "plan"}) == 0
    assert value("billstream_drift_checked_total") == 6
    assert value("billstream_drift_audit_duration_seconds") == 0.5
    assert value("billstream_drift_last_success_timestamp_seconds") == 200.0


def test_make_dev_runs_drift_audit_only_when_an_interval_is_set(
    make_settings: SettingsFactory,
) -> None:
    assert default_services(make_settings()) == ["ingest", "worker", "api"]
    configured = make_settings(undelivered_recovery_interval_seconds=900)
    assert default_services(configured) == ["ingest", "worker", "api", "drift-audit"]


def test_make_dev_runs_the_resolver_only_with_a_stripe_key(make_settings: SettingsFactory) -> None:
    keyed = make_settings(stripe_api_key="sk_test_dev")
    assert default_services(keyed) == ["ingest", "worker", "api", "resolve"]
