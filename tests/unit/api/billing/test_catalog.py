"""GET /billing/catalog: prices by lookup_key first, then price id; only what Stripe sells."""

from __future__ import annotations

import asyncio

from pytest_aiohttp import AiohttpClient

from billstream.api.app import create_app
from billstream.api.billing.catalog_events import is_catalog_event
from billstream.api.store import Store
from tests.support.settings import SettingsFactory
from tests.support.stripe_billing import FakeStripe, catalog_price
from tests.unit.api.billing.conftest import AUTH, Billing, BillingFactory, prices, subscription


async def test_plans_in_tier_order_with_their_monthly_and_yearly_prices(billing: Billing) -> None:
    response = await billing.client.get("/billing/catalog")
    assert response.status == 200
    body = await response.json()

    assert [p["plan"] for p in body["plans"]] == ["PRO", "BUSINESS"]  # FREE has no price
    pro, business = body["plans"]
    assert pro["tier"] == 1
    assert pro["prices"]["month"]["price_id"] == "price_pro_m"
    assert pro["prices"]["year"] == {
        "price_id": "price_pro_y",
        "lookup_key": "pro_yearly",
        "unit_amount": 29000,
        "currency": "usd",
        "product": "prod_price_pro_y",
        "product_name": "Product price_pro_y",
    }
    # business_monthly (lookup key) wins over price_business_legacy (a price id, also monthly)
    assert business["prices"]["month"]["price_id"] == "price_biz_m"
    assert business["prices"]["year"]["price_id"] == "price_biz_y"  # by price id
    assert body["intervals"] == ["month", "year"]
    assert body["yearly_available"] is True


async def test_lookup_keys_are_asked_once_in_one_list_call(billing: Billing) -> None:
    (lookup,) = [s for s in billing.stripe.sent if s.path == "/v1/prices"]
    assert sorted(v[0] for k, v in lookup.query.items() if k.startswith("lookup_keys")) == [
        "business_monthly",
        "pro_monthly",
        "pro_yearly",
    ]
    assert lookup.query["active"] == ["true"]
    assert lookup.query["expand[0]"] == ["data.product"]
    retrieved = [s for s in billing.stripe.sent if s.path.startswith("/v1/prices/")]
    # PRO is complete from its lookup keys; BUSINESS still lacks a yearly price, so its ids
    # are retrieved in BILLING_PLAN_MAP order, each with its product
    assert [s.path for s in retrieved] == [
        "/v1/prices/price_business_legacy",
        "/v1/prices/price_biz_y",
    ]
    assert all(s.query["expand[0]"] == ["product"] for s in retrieved)


async def test_requests_are_served_from_memory_not_from_stripe(billing: Billing) -> None:
    before = len(billing.stripe.sent)
    for _ in range(3):
        assert (await billing.client.get("/billing/catalog")).status == 200
    assert len(billing.stripe.sent) == before


async def test_inactive_prices_and_products_and_missing_ids_are_not_sold(
    make_billing: BillingFactory,
) -> None:
    fake = FakeStripe(
        [
            catalog_price("price_pro_m", "pro_monthly", active=False),
            catalog_price("price_biz_m", "business_monthly", product_active=False),
        ],
        [subscription()],
    )
    billing = await make_billing(
        fake, billing_plan_map="pro_monthly=PRO,business_monthly=BUSINESS,price_gone_404=BUSINESS"
    )
    fake.fail_next(
        "get",
        "/v1/prices/price_gone_404",
        404,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": "No such price",
                "param": "price",
            }
        },
    )
    billing.service.catalog.invalidate()
    await _refreshed(billing, 2)

    body = await (await billing.client.get("/billing/catalog")).json()
    assert body["plans"] == []
    assert body["yearly_available"] is False


async def test_no_yearly_toggle_without_yearly_prices(make_billing: BillingFactory) -> None:
    monthly = [p for p in prices() if p["recurring"]["interval"] == "month"]
    billing = await make_billing(
        FakeStripe(monthly, [subscription()]),
        billing_plan_map="pro_monthly=PRO,business_monthly=BUSINESS",
    )
    body = await (await billing.client.get("/billing/catalog")).json()
    assert body["intervals"] == ["month"]
    assert body["yearly_available"] is False
    assert [set(p["prices"]) for p in body["plans"]] == [{"month"}, {"month"}]


async def test_an_invalidation_re_reads_stripe(billing: Billing) -> None:
    billing.stripe.prices["price_pro_y"]["active"] = False  # archived in the Dashboard
    billing.service.catalog.invalidate()  # what a price.updated in stripe.events does
    await _refreshed(billing, 2)

    body = await (await billing.client.get("/billing/catalog")).json()
    assert set(body["plans"][0]["prices"]) == {"month"}


async def test_catalog_events_are_recognised_by_their_type_header() -> None:
    assert is_catalog_event([("stripe-event-type", b"price.updated")])
    assert is_catalog_event([("x", b"1"), ("stripe-event-type", b"product.deleted")])
    assert not is_catalog_event([("stripe-event-type", b"invoice.paid")])
    assert not is_catalog_event([("stripe-event-type", b"prices.x")])
    assert not is_catalog_event([])


async def test_without_a_stripe_key_the_routes_answer_503(
    aiohttp_client: AiohttpClient, make_settings: SettingsFactory, sqlite_store: Store
) -> None:
    client = await aiohttp_client(create_app(make_settings(), sqlite_store), headers=AUTH)
    for path in ("/billing/catalog", "/billing/customers"):
        response = await (
            client.get(path)
            if path.endswith("catalog")
            else client.post(path, json={"user_id": "u1"})
        )
        assert response.status == 503
        assert (await response.json())["error"] == "billing_unavailable"
        assert response.headers["Retry-After"] == "60"


async def _refreshed(billing: Billing, count: int) -> None:
    for _ in range(200):
        if billing.service.catalog.refreshes >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("catalog not refreshed")
