"""Drift audit and heal, one-off and periodic, and periodic undelivered recovery, on the real
pipeline, with Stripe's API answered through stripe-mock.

Stripe (stripe-mock validates every request; the listed subscriptions are this test's) says
cus_a has an active PRO subscription billstream never heard of, cus_b's subscription was
canceled though billstream serves it active, and cus_c agrees. The one-off audit finds exactly
the first two, by field (the subscription schedules of those customers are listed and
folded too). Then the periodic service (`billstream drift-audit`'s app, in process
so its Stripe client answers from this test) runs every half second with DRIFT_HEAL: it heals
the two, the worker folds the objects, and a later cycle finds nothing; its /metrics say so.
A connected account (DRIFT_STRIPE_ACCOUNTS) is listed with `Stripe-Account` beside the
platform: its subscription of a customer with cus_a's id is a third drift, of `acct_…/cus_a`,
healed into that account alone. Its undelivered recovery publishes the one event Stripe
lists as not delivered (cus_d's subscription) once, and the worker serves it. A last one-off
heal sends nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from billstream.drift.audit import FIELDS
from billstream.drift.auditor import Audit, account_listings, run_audit
from billstream.drift.metrics import RecoveryMetrics
from billstream.drift.service import build_app, drift_job, undelivered_job
from billstream.settings import Settings
from billstream.stripe_signing import sign_payload
from billstream.topics import STRIPE_EVENTS
from tests.integration.live_stack import LiveStack, eventually, get_json
from tests.support import factories as f
from tests.support.children import bearer, free_port
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import (
    PagedEvents,
    PagedSubscriptions,
    PerAccount,
    RecordingClient,
    Rewrites,
    client_for,
)
from tests.support.worker_process import read_all

CONNECTED = "acct_drifting"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def post(stack: LiveStack, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_payload(body, "whsec_test_secret")}
    url = f"http://127.0.0.1:{stack.settings.ingest_port}/webhooks/stripe"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        return r.status


async def scrape(port: int) -> Samples:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def runs(samples: Samples, job: str, result: str = "ok") -> float:
    return samples[("billstream_recovery_runs_total", (("job", job), ("result", result)))]


def sub(customer: str, status: str, price: dict[str, Any]) -> dict[str, Any]:
    return f.subscription(
        sub_id=f"sub_{customer}", customer=customer, status=status, prices=[price],
        created=1_767_225_600,
    )  # fmt: skip


async def test_detect_heal_clean_once_and_periodically(
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    stripe_mock: str,
    unique_id: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        stripe_api_key="sk_test_drift",
        stripe_api_base=stripe_mock,
        billing_plan_map=f.PLAN_MAP,
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        database_url=f"sqlite:///{tmp_path}/read-model.db",
        worker_data_dir=str(tmp_path / "worker"),
        drift_stripe_accounts=(CONNECTED,),
    )
    a, b, c, d = (f"cus_{name}_{unique_id}" for name in "abcd")
    connected_a = f"{CONNECTED}/{a}"  # the same customer id, in the connected account
    connected_says = [{**sub(a, "active", f.business_monthly()), "id": f"sub_{a}_connected"}]
    stripe_says = [
        sub(a, "active", f.pro_monthly()),
        sub(b, "canceled", f.pro_monthly()),
        sub(c, "active", f.business_monthly()),
    ]
    never_delivered = f.event(
        "customer.subscription.created", sub(d, "active", f.pro_monthly()),
        created=int(time.time()) - 3600,
    )  # fmt: skip
    transport = RecordingClient()
    transport.rewrite = PerAccount(
        transport,
        {
            None: Rewrites(PagedSubscriptions(stripe_says), PagedEvents([never_delivered])),
            CONNECTED: PagedSubscriptions(connected_says),
        },
    )
    client = client_for(settings, transport)
    api = f"http://127.0.0.1:{settings.api_port}"
    stack = LiveStack(settings, tmp_path, with_prometheus=False)
    await stack.start()
    try:
        for customer, price in ((b, f.pro_monthly()), (c, f.business_monthly())):
            event = f.event(
                "customer.subscription.created",
                sub(customer, "active", price),
                created=1_767_225_601,
            )
            assert await post(stack, event) == 200

        async def audited(heal: bool = False) -> Audit:
            return await run_audit(
                settings, client, api, account_listings(settings.drift_stripe_accounts), heal
            )

        deadline = time.monotonic() + 60
        while len((found := await audited()).drifting) != 3:  # until b and c are served
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.5)
        assert found.drifting == sorted([a, b, connected_a])
        fields = {(d.customer_id, d.field): (d.stripe, d.served) for d in found.found}
        assert fields[(b, "subscription_status")] == ("canceled", "active")
        assert fields[(b, "plan")] == ("FREE", "PRO")
        assert fields[(a, "plan")] == ("PRO", None)  # not served at all
        assert fields[(connected_a, "plan")] == ("BUSINESS", None)
        # Each account's subscriptions and schedules are listed in that account (stripe-mock's
        # schedule is of another customer: not folded).
        for path in ("/v1/subscriptions", "/v1/subscription_schedules"):
            accounts = {s.headers.get("Stripe-Account") for s in transport.sent if s.path == path}
            assert accounts == {None, CONNECTED}, path

        samples = await periodic(settings.model_copy(update={"drift_heal": True}), client, tmp_path)
        assert samples[("billstream_undelivered_recovered_total", ())] == 1  # once, not per run
        undelivered = [s for s in transport.sent if s.path == "/v1/events"]
        assert all(s.query["delivery_success"] == ["false"] for s in undelivered)
        account = await get_json(f"{api}/accounts/{d}", bearer(settings))
        assert (account["plan"], account["subscription_status"]) == ("PRO", "active")
        healed = await get_json(f"{api}/accounts/{a}?stripe_account={CONNECTED}", bearer(settings))
        assert (healed["plan"], healed["stripe_account"]) == ("BUSINESS", CONNECTED)
        platform_a = await get_json(f"{api}/accounts/{a}", bearer(settings))
        assert (platform_a["plan"], platform_a["stripe_account"]) == ("PRO", None)

        repeat = await audited(heal=True)  # nothing drifts: nothing published
        assert (repeat.found, repeat.healed_events) == ([], 0)
        records = await read_all(kafka_bootstrap, settings.topic(STRIPE_EVENTS))
        drift = [r for r in records if dict(r.headers).get("source") == b"drift"]
        ids = {orjson.loads(r.value)["id"] for r in drift}
        assert len(ids) == 3  # a cycle before the worker folded a heal repeats its ids
        connected_heals = [r for r in drift if r.key == connected_a.encode()]
        assert [orjson.loads(r.value)["account"] for r in connected_heals] == [CONNECTED] * len(
            connected_heals
        )
        assert connected_heals
        assert all(event_id.startswith("evt_drift_") for event_id in ids)
    finally:
        stack.stop()


async def periodic(settings: Settings, client: Any, tmp_path: Path) -> Samples:
    """Run the drift-audit app until a cycle after a heal finds no drift; its last metrics."""
    metrics = RecoveryMetrics.create()
    jobs = [
        drift_job(settings, client, metrics, interval=0.5),
        undelivered_job(settings, client, metrics, 0.5, tmp_path / "undelivered.json"),
    ]
    runner = web.AppRunner(build_app(jobs, metrics))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        samples: Samples = {}

        async def clean_after_heal() -> bool:
            nonlocal samples
            samples = await scrape(port)
            audits, recoveries = runs(samples, "drift_audit"), runs(samples, "undelivered_recovery")
            drifting = sum(samples[("billstream_drift_accounts", (("field", n),))] for n in FIELDS)
            return audits >= 2 and recoveries >= 2 and drifting == 0

        await eventually(clean_after_heal, "a periodic audit finding no drift", timeout=60)
        audits = runs(samples, "drift_audit")
        checked = samples[("billstream_drift_checked_total", ())]
        assert checked == 4 * audits  # a, b, c and the connected a each time
        assert samples[("billstream_drift_healed_events_total", ())] >= 3  # the first cycle healed
        assert samples[("billstream_drift_last_success_timestamp_seconds", ())] > 0
        assert samples[("billstream_drift_audit_duration_seconds", ())] > 0
        assert (
            runs(samples, "drift_audit", "error")
            == runs(samples, "undelivered_recovery", "error")
            == 0
        )
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/readyz") as ready,
        ):
            assert ready.status == 200
        return samples
    finally:
        await runner.cleanup()
