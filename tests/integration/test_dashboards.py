"""Every Grafana panel query returns data from a live stack fed by `billstream simulate`.

Ingest, worker and api run as child processes against the real broker; a real Prometheus scrapes
them every second and evaluates the shipped alert rules. After a short simulation, each PromQL
expression of each dashboard must name only metrics a target exports and return a finite value.
The state the simulator predicts (reducer fold) must be what the api serves, and the services'
JSON logs carry neither payloads nor secrets.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from billstream.simulate.catalog import SIMULATOR_PLAN_MAP
from billstream.topics import ensure_topics
from tests.integration.live_stack import SERVICES, LiveStack, eventually, get_json
from tests.support.children import free_port
from tests.support.dashboards import Query, queries
from tests.support.settings import SettingsFactory

SIM_ARGS = ("--rate", "80", "--duration", "25", "--seed", "20260602", "--customers", "25")
WINDOW = "15m"  # what Grafana's $__range stands for here: the whole run
SYNTHETIC = {"up"}  # series Prometheus makes itself, not exported by a target


@pytest.fixture
async def stack(
    kafka_bootstrap: str, make_settings: SettingsFactory, tmp_path: Path, stripe_mock: str
) -> AsyncIterator[LiveStack]:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        billing_plan_map=SIMULATOR_PLAN_MAP,
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        worker_data_dir=str(tmp_path / "worker"),
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        # drift-audit against stripe-mock (its one fixture subscription; its fixture event is
        # outside the allowlist, so nothing is published): its panels must return data too.
        drift_audit_port=free_port(),
        resolver_port=free_port(),  # the resolver too: its panels read its series
        stripe_api_key="sk_test_dashboards",
        stripe_api_base=stripe_mock,
        drift_audit_interval_seconds=2,
        undelivered_recovery_interval_seconds=2,
    )
    await ensure_topics(settings)
    live = LiveStack(settings, tmp_path, services=(*SERVICES, "drift-audit", "resolve"))
    try:
        await live.start()
        yield live
    finally:
        live.stop()


async def api_counts(live: LiveStack) -> dict[str, Counter[str]]:
    """plan, payment_state and pending_plan counts over every account the api serves."""
    counts: dict[str, Counter[str]] = {
        "plan": Counter(),
        "payment_state": Counter(),
        "pending_plan": Counter(),
    }
    after: str | None = None
    while True:
        params = {"limit": "500", **({"after": after} if after else {})}
        url = f"http://127.0.0.1:{live.settings.api_port}/accounts"
        page = await get_json(url, live.api_headers, **params)
        for account in page["items"]:
            for name, counter in counts.items():
                counter[str(account[name])] += 1
        after = page["next"]
        if not after:
            return counts


async def evaluate(live: LiveStack, query: Query, exported: set[str]) -> str | None:
    """None when the panel query is sound; otherwise why not."""
    missing = query.families() - exported - SYNTHETIC
    if missing:
        return f"{query.name()}: no target exports {sorted(missing)}"
    result = await live.query(query.promql(WINDOW))
    if not result:
        return f"{query.name()}: no data for {query.expr}"
    values = [float(sample["value"][1]) for sample in result]
    if not any(math.isfinite(value) for value in values):
        return f"{query.name()}: only NaN/Inf for {query.expr}"
    return None


async def test_every_panel_returns_data_from_a_simulated_stack(stack: LiveStack) -> None:
    summary: dict[str, Any] = stack.simulate(*SIM_ARGS)
    queued: int = summary["responses"]["queued"]
    assert summary["stories"]["dunning_lost"]
    assert summary["stories"]["sca_abandoned"]
    assert summary["stories"]["downgrade_scheduled_by_schedule"]  # schedules through the stack

    async def worker_caught_up() -> bool:
        # Seen by Prometheus, so the next queries see every event too.
        return await stack.scalar("sum(billstream_event_lag_seconds_count)") >= queued

    await eventually(worker_caught_up, f"worker processed {queued} records", 90)

    expected = summary["expected"]

    async def api_serves_expected_state() -> bool:
        counts = await api_counts(stack)
        return all(counts[name] == Counter(expected[name]) for name in counts)

    try:
        await eventually(api_serves_expected_state, "api serves the simulated state", 60)
    except AssertionError:
        counts = await api_counts(stack)
        assert counts == {name: Counter(expected[name]) for name in counts}

    exported = await stack.exported_families()
    problems = [problem for q in queries() if (problem := await evaluate(stack, q, exported))]
    assert problems == []

    unhealthy = [rule["name"] for rule in await stack.rules() if rule["health"] != "ok"]
    assert unhealthy == []

    # LOG_FORMAT=json: every line of every service is a JSON record; none carries a payload
    # (simulated customers' e-mails, event bodies) or the signing secret.
    secret = stack.settings.webhook_secret_values()[0]
    for name in stack.services:
        lines = stack.log_lines(name)
        assert lines, name
        for line in lines:
            assert json.loads(line)["service"] == name, line
            assert secret not in line
            assert "@example.com" not in line
            assert '"object": "event"' not in line

    # The check itself: a misspelled metric, or a selector matching nothing, is reported.
    typo = Query("x.json", "typo", "A", "sum(rate(stripe_webhook_recieved_total[5m])) or vector(0)")
    assert "no target exports" in str(await evaluate(stack, typo, exported))
    empty = Query("x.json", "empty", "A", 'sum(rate(stripe_webhook_received_total{x="y"}[5m]))')
    assert await evaluate(stack, empty, exported) == f"x.json / empty / A: no data for {empty.expr}"
