"""`price.*` / `product.*` events (allowed by default, for the api's catalog) pass the worker
harmlessly: keyed by the price or product id (they name no customer), folded by no rule, so
they publish no account state, dead-letter nothing and leave the stream going."""

from __future__ import annotations

import orjson

from billstream.processors.worker import Worker
from billstream.routing import record_headers, routing_key
from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS_DLQ
from tests.support import factories as f
from tests.unit.processors.test_handler import created, record, sample, sent, source_of, worker

__all__ = ["worker"]  # the fixture


def catalog_event(event_type: str, obj: dict[str, object]) -> dict[str, object]:
    return f.event(event_type, obj, created=100)


async def test_price_and_product_events_change_no_account_and_are_not_poison(
    worker: Worker,
) -> None:
    events = [
        catalog_event("price.updated", {**f.pro_monthly(), "active": False}),
        catalog_event("price.created", f.business_yearly()),
        catalog_event("product.updated", {"id": "prod_pro", "object": "product", "active": True}),
        catalog_event("product.deleted", {"id": "prod_old", "object": "product", "deleted": True}),
    ]
    async with source_of(worker) as source:
        for event in events:
            key = routing_key(event)
            assert key.startswith(("price_", "prod_"))  # no customer: the object's id
            await source.put(key.encode(), orjson.dumps(event), record_headers(event, 1_000))
        await source.put(**record(created(200)))  # and the stream goes on

    assert sent(worker, STRIPE_EVENTS_DLQ) == []
    (published,) = sent(worker, ACCOUNT_STATE)
    assert orjson.loads(published["value"])["customer_id"] == f.CUSTOMER
    assert (
        sum(
            sample(worker, "billstream_dlq_total", reason=reason)
            for reason in ("not_json", "bad_type", "missing_key", "reducer_error")
        )
        == 0
    )
