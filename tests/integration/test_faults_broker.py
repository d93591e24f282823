"""Broker restart in the middle of a steady webhook stream: nothing acknowledged is lost, nothing
is applied twice, and every request the outage touched got a 503 (never a silent loss).

ingest, worker and api run as child processes against a PRIVATE broker (fixture
`private_broker`), which the test stops and restarts; the shared broker is never touched. The
oracle is the pure reducer folding, per customer, exactly the events ingest answered 2xx.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from billstream.processors.config import ReducerConfig
from billstream.tables.codec import decode_state
from billstream.tables.tables import CUSTOMER_STATE_TABLE
from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS, ensure_topics
from tests.integration.test_worker_crash import latest_by_key, oracle
from tests.support.children import free_port
from tests.support.factories import PLAN_MAP
from tests.support.private_broker import PrivateBroker
from tests.support.services import Service, WebhookStream, api_caught_up_with
from tests.support.settings import SettingsFactory
from tests.support.worker_process import WorkerProcess, read_all, wait_caught_up
from tests.support.workload import Workload, build_workload

SECRET = "whsec_test_secret"  # what make_settings configures
CUSTOMERS = 160  # ~1,600 webhooks, Stripe retries of the same id included
RATE = 80.0  # webhooks per second: the stream lasts ~20 s plus the outage
STOP_AT = 0.3  # share of the stream acknowledged when the broker is stopped
OUTAGE = 4.0  # seconds the broker stays down once stopped
PUBLISH_TIMEOUT = 2.0


async def wait_for(what: str, check: Any, timeout: float = 60.0) -> None:
    """Poll the synchronous `check` until it holds; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not true after {timeout:.0f} s"
        await asyncio.sleep(0.1)


async def test_broker_restart_mid_stream_loses_nothing_and_applies_nothing_twice(
    make_settings: SettingsFactory, private_broker: PrivateBroker, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=private_broker.bootstrap,
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        ingest_publish_timeout=PUBLISH_TIMEOUT,
        worker_data_dir=str(tmp_path / "worker"),
        worker_session_timeout=6,
        database_url=f"sqlite:///{tmp_path / 'read.db'}",
        billing_plan_map=",".join(f"{k}={v}" for k, v in PLAN_MAP.items()),
    )
    workload = build_workload(CUSTOMERS, seed=23, prefix="cus_brk_", poison_rate=0.0)
    events = [orjson.loads(value) for _, value, _ in workload.records]
    await ensure_topics(settings)
    ingest = Service(
        "ingest", settings, settings.ingest_port, tmp_path / "ingest.log", "--host", "127.0.0.1"
    )
    api = Service("api", settings, settings.api_port, tmp_path / "api.log")
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    stream = WebhookStream(f"{ingest.base_url}/webhooks/stripe", SECRET, RATE)
    try:
        for service in (ingest, worker, api):
            service.start()
        await asyncio.gather(ingest.wait_ready(), worker.wait_ready(), api.wait_ready())

        sending = asyncio.create_task(stream.run(events))
        await wait_for(
            "acks before the outage", lambda: len(stream.attempts) > STOP_AT * len(events)
        )
        await asyncio.to_thread(private_broker.stop)
        down_at = time.monotonic()
        await asyncio.sleep(OUTAGE)
        up_from = time.monotonic()
        await asyncio.to_thread(private_broker.start)
        await asyncio.wait_for(sending, timeout=300)

        source = settings.topic(STRIPE_EVENTS)
        await wait_caught_up(private_broker.bootstrap, settings.billstream_app_id, source, worker)
        published_records = await read_all(private_broker.bootstrap, settings.topic(ACCOUNT_STATE))
        published = {k: orjson.loads(v) for k, v in latest_by_key(published_records).items()}

        served = await api_caught_up_with(api, published)
        changelog = f"{settings.billstream_app_id}-{CUSTOMER_STATE_TABLE}-changelog"
        stored_records = await read_all(private_broker.bootstrap, changelog)
        source_records = await read_all(private_broker.bootstrap, source)
        for service in (ingest, api):
            service.running()
        assert worker.stop() == 0, worker.log_tail()
    finally:
        for service in (ingest, api):
            service.stop()
        worker.stop()

    statuses = Counter(attempt.status for attempt in stream.attempts)
    print(f"attempts by status {dict(statuses)}; {len(events)} events")
    # Every answer was a 2xx or the designed 503; nothing timed out or failed otherwise.
    assert set(statuses) <= {200, 503}, statuses
    # Requests sent and answered entirely while the broker was down all got 503.
    during = [a for a in stream.attempts if a.started >= down_at and a.ended <= up_from]
    assert during, "no request ran during the outage"
    assert {a.status for a in during} == {503}
    # Stripe's retries got every event acknowledged in the end.
    assert stream.acked_ids() == {event["id"] for event in events}
    # Acknowledged means durable: every 2xx'd id is on stripe.events, and nothing else is.
    on_topic = {dict(r.headers)["stripe-event-id"].decode() for r in source_records}
    assert on_topic == stream.acked_ids()

    # Each customer's state is exactly the fold of its acknowledged events: a lost event or a
    # double application (a bumped `version`, a second "seen") would differ from the oracle.
    expected = oracle(Workload(events=stream.acked), ReducerConfig.from_settings(settings))
    views = {c: v for c, s in expected.items() if (v := s.account_view()) is not None}
    assert published == views
    stored = {k: decode_state(v) for k, v in latest_by_key(stored_records).items()}
    assert stored == {customer: state.to_dict() for customer, state in expected.items()}
    # The api serves `stripe_account` for every account (null: the platform's, which the
    # worker's view leaves out).
    platform = {"stripe_account": None}
    assert served == {
        c: {k: {**platform, **view}[k] for k in served[c]} for c, view in views.items()
    }
