"""The reconcile timer inside a real worker: a due downgrade reaches stripe-mock and is counted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from billstream.routing import record_headers, routing_key
from billstream.topics import STRIPE_EVENTS, ensure_topics
from tests.integration.kafka import produce
from tests.integration.stripe_tools import WorkerChild
from tests.support.children import free_port
from tests.support.factories import PLAN_MAP, business_monthly, subscription_event
from tests.support.settings import SettingsFactory

DEADLINE_SECONDS = 60.0


async def test_the_worker_applies_a_due_downgrade_through_stripe(
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    stripe_mock: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        billing_plan_map=",".join(f"{k}={v}" for k, v in PLAN_MAP.items()),
        worker_web_port=free_port(),
        worker_data_dir=str(tmp_path / "worker"),
    )
    reconcile_env = {
        "RECONCILE_CRON_ENABLED": "true",
        "RECONCILE_CRON_INTERVAL_SECONDS": "1",
        "STRIPE_API_KEY": "sk_test_reconcile",
        "STRIPE_API_BASE": stripe_mock,
    }
    now = int(time.time())
    events = [
        subscription_event(
            created=now - 60,
            customer=customer,
            sub_id=f"sub_{customer}",
            prices=[business_monthly()],
            pending_plan="PRO",
            current_period_end=period_end,
        )
        for customer, period_end in (("cus_due", now + 300), ("cus_later", now + 30 * 86400))
    ]
    await ensure_topics(settings)
    await produce(
        kafka_bootstrap,
        settings.topic(STRIPE_EVENTS),
        [(routing_key(e).encode(), orjson.dumps(e), record_headers(e, now * 1000)) for e in events],
    )
    worker = WorkerChild(settings, tmp_path / "worker.log", reconcile_env)
    worker.start()
    try:
        await worker.wait_ready()
        # Applied implies processed: the timer only sees accounts the agent has folded.
        deadline = time.monotonic() + DEADLINE_SECONDS
        while await worker.metric("stripe_subscription_downgrade_applied_total") < 1:
            assert time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(0.5)
        assert await worker.metric("stripe_subscription_reconcile_run_total") >= 1
        assert await worker.metric("stripe_subscription_reconcile_error_total") == 0
        assert "reconcile: cus_due BUSINESS → PRO applied" in worker.log_tail(400)
        assert "cus_later" not in worker.log_tail(400)
    finally:
        worker.stop()
