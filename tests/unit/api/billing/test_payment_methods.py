"""A customer in dunning sets a new default payment method; the open invoice is paid with it."""

from __future__ import annotations

from tests.support.stripe_billing import FakeStripe
from tests.unit.api.billing.conftest import BillingFactory, prices, subscription

ROUTE = "/billing/subscriptions/sub_alice/default-payment-method"
OPEN_INVOICE = {"id": "in_open", "object": "invoice", "status": "open"}


async def test_the_new_default_pays_the_open_invoice_each_call_with_its_own_key(
    make_billing: BillingFactory,
) -> None:
    fake = FakeStripe(prices(), [subscription(status="past_due", latest_invoice=OPEN_INVOICE)])
    billing = await make_billing(fake)

    body = await billing.post(ROUTE, {"payment_method": "pm_new_card"})

    update, pay = fake.posts()
    assert update.path == "/v1/subscriptions/sub_alice"
    assert update.form["default_payment_method"] == ["pm_new_card"]
    assert update.form["expand[0]"] == ["latest_invoice"]
    assert pay.path == "/v1/invoices/in_open/pay"
    assert pay.form["payment_method"] == ["pm_new_card"]
    assert update.headers["Idempotency-Key"].startswith("billstream-payment-method-")
    assert pay.headers["Idempotency-Key"] == update.headers["Idempotency-Key"] + ":pay"
    assert body["default_payment_method"] == "pm_new_card"
    assert body["latest_invoice"]["id"].startswith("in_")


async def test_no_payment_without_an_open_invoice_or_when_not_asked(
    make_billing: BillingFactory,
) -> None:
    paid = {**OPEN_INVOICE, "status": "paid"}
    fake = FakeStripe(prices(), [subscription(latest_invoice=paid)])
    billing = await make_billing(fake)
    await billing.post(ROUTE, {"payment_method": "pm_1"})
    fake.subscriptions["sub_alice"]["latest_invoice"] = OPEN_INVOICE
    body = await billing.post(ROUTE, {"payment_method": "pm_1", "pay_open_invoice": False})

    assert [s.path for s in fake.posts()] == ["/v1/subscriptions/sub_alice"] * 2
    assert body["latest_invoice"] == {"id": "in_open", "status": "open"}


async def test_a_declined_new_card_is_a_402_and_stays_the_default(
    make_billing: BillingFactory,
) -> None:
    fake = FakeStripe(prices(), [subscription(status="past_due", latest_invoice=OPEN_INVOICE)])
    billing = await make_billing(fake)
    decline = {"type": "card_error", "code": "expired_card", "message": "Your card has expired."}
    fake.fail_next("post", "/v1/invoices/in_open/pay", 402, {"error": decline})

    body = await billing.post(ROUTE, {"payment_method": "pm_expired"}, 402)

    assert body["code"] == "expired_card"
    assert fake.subscriptions["sub_alice"]["default_payment_method"] == "pm_expired"


async def test_a_payment_method_that_is_not_an_id_is_a_400(make_billing: BillingFactory) -> None:
    billing = await make_billing()
    body = await billing.post(ROUTE, {"payment_method": "4242 4242 4242 4242"}, 400)
    assert body["field"] == "payment_method"
    assert billing.stripe.posts() == []


async def test_another_customers_subscription_is_not_found(make_billing: BillingFactory) -> None:
    billing = await make_billing()
    route = ROUTE
    body = await billing.post(route, {"payment_method": "pm_1", "customer_id": "cus_mallory"}, 404)
    assert body["error"] == "not_found"
    assert billing.stripe.posts() == []
    await billing.post(route, {"payment_method": "pm_1", "customer_id": "cus_alice"})
    assert len(billing.stripe.posts("/v1/subscriptions/sub_alice")) == 1
