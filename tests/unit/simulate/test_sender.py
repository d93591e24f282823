"""The sender signs like Stripe, retries 503s, keeps each customer's order, and stops on time."""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from billstream.allowlist import EventAllowlist
from billstream.settings import DEFAULT_ALLOWED_EVENTS
from billstream.simulate.connect import for_accounts
from billstream.simulate.sender import Sender, SendOptions
from billstream.simulate.traffic import Delivery, TrafficConfig, traffic
from tests.unit.simulate.fake_ingest import CONNECT_SECRET, SECRET, FakeIngest

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def options(server: TestServer, rate: float = 2000.0, duration: float = 30.0) -> SendOptions:
    url = str(server.make_url("/webhooks/stripe"))
    return SendOptions(url=url, secret=SECRET, rate=rate, duration=duration, backoff=0.01)


def deliveries(count: int) -> list[Delivery]:
    config = TrafficConfig(seed=3, start=1_760_000_000, customers=8, noise_ratio=0.05)
    return list(itertools.islice(traffic(config), count))


async def test_answers_retries_and_per_customer_order(aiohttp_server: ServerFactory) -> None:
    fake = FakeIngest(fail_first=lambda event_id: event_id.endswith(("a", "b", "c")))
    server = await aiohttp_server(fake.app())
    sent = deliveries(400)
    report = await Sender(options(server)).run(sent, total=len(sent))

    assert len(report.outcomes) == len(sent)
    assert not report.stopped_early
    statuses = {(o.delivery.kind, o.status) for o in report.outcomes}
    assert ("bad_signature", "invalid_signature") in statuses
    assert ("bad_payload", "invalid_payload") in statuses
    assert {s for k, s in statuses if k in ("event", "duplicate")} == {"queued", "ignored"}
    assert report.retried_statuses["unavailable"] == len(fake.failed) > 0
    assert all(o.attempts == 2 for o in report.outcomes if o.delivery.event_id in fake.failed)

    # Each customer's events reached ingest, and are reported, in the order they were generated.
    generated: dict[str, list[str]] = defaultdict(list)
    for delivery in sent:
        allowed = EventAllowlist(DEFAULT_ALLOWED_EVENTS).allows(delivery.event_type)
        if delivery.customer_id and allowed:
            generated[delivery.customer_id].append(delivery.event_id)
    received: dict[str, list[str]] = defaultdict(list)
    for event in fake.queued:
        obj = event["data"]["object"]  # type: ignore[index]
        received[obj.get("customer") or obj["id"]].append(str(event["id"]))
    reported: dict[str, list[str]] = defaultdict(list)
    for outcome in report.outcomes:
        if outcome.status == "queued" and outcome.delivery.customer_id:
            reported[outcome.delivery.customer_id].append(outcome.delivery.event_id)
    assert received == generated == reported


async def test_connect_deliveries_go_to_the_connect_endpoint_with_its_secret(
    aiohttp_server: ServerFactory,
) -> None:
    fake = FakeIngest()
    server = await aiohttp_server(fake.app())
    sent = list(for_accounts(deliveries(200), 2))
    connect = [d for d in sent if d.destination == "connect"]
    opts = dataclasses.replace(options(server), connect_secret=CONNECT_SECRET)
    report = await Sender(opts).run(sent, total=len(sent))
    statuses = {o.status for o in report.outcomes if o.delivery.kind in ("event", "duplicate")}
    assert statuses == {"queued", "ignored"}  # none signed or routed wrong
    assert connect
    assert sum(1 for event in fake.queued if event.get("account")) == sum(
        1 for o in report.outcomes if o.status == "queued" and o.delivery.destination == "connect"
    )


async def test_stops_starting_deliveries_after_the_duration(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(FakeIngest().app())
    # 400 deliveries at 100/s need 4 s; the sender gives up starting new ones after 1.1 s.
    report = await Sender(options(server, rate=100.0, duration=0.1)).run(deliveries(400), 400)
    assert report.stopped_early
    assert 10 < len(report.outcomes) < 400


async def test_unreachable_ingest_is_an_error_after_retries(
    aiohttp_server: ServerFactory,
) -> None:
    server = await aiohttp_server(FakeIngest().app())
    url = str(server.make_url("/webhooks/stripe"))
    await server.close()
    opts = SendOptions(url=url, secret=SECRET, rate=1000, duration=5, max_retries=2, backoff=0.01)
    report = await Sender(opts).run(deliveries(3), 3)
    assert [o.status for o in report.outcomes] == ["error"] * 3
    assert all(o.attempts == 3 for o in report.outcomes)
