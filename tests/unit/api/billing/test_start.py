"""Customers, Checkout, Elements subscriptions and portal sessions: the parameters sent to
stripe-mock (which validates them) and the idempotency key of every create."""

from __future__ import annotations

from typing import Any

from tests.support.stripe_billing import FakeStripe
from tests.unit.api.billing.conftest import Billing, BillingFactory, prices, subscription

CHECKOUT = {
    "customer_id": "cus_alice",
    "plan": "PRO",
    "interval": "year",
    "success_url": "https://app.example.com/billing/done",
    "cancel_url": "https://app.example.com/billing",
}


def key(sent: Any) -> str:
    value: str = sent.headers["Idempotency-Key"]
    return value


async def test_a_new_user_gets_a_customer_with_their_id_in_metadata(billing: Billing) -> None:
    body = {"user_id": "user-42", "email": "ada@example.com"}
    first = await billing.post("/billing/customers", body)
    again = await billing.post("/billing/customers", body)  # a retried click

    (search, _, _, _) = [s for s in billing.stripe.sent if s.path.startswith("/v1/customers")]
    assert search.query["query"] == ["metadata['billstream_user_id']:'user-42'"]
    creates = billing.stripe.posts("/v1/customers")
    assert len(creates) == 2  # stripe-mock keeps no state, so the search never finds it
    assert creates[0].form["metadata[billstream_user_id]"] == ["user-42"]
    assert creates[0].form["email"] == ["ada@example.com"]
    # the same key both times: real Stripe answers the retry with the first customer
    assert key(creates[0]) == key(creates[1])
    assert key(creates[0]).startswith("billstream-customer-")
    assert first["created"] is True
    assert first["user_id"] == "user-42"
    assert again["customer_id"].startswith("cus_")  # stripe-mock mints a new id each time


async def test_an_existing_customer_is_returned_without_a_create(
    make_billing: BillingFactory,
) -> None:
    known = {"id": "cus_known", "object": "customer", "metadata": {"billstream_user_id": "u7"}}
    other = {"id": "cus_other", "object": "customer", "metadata": {"billstream_user_id": "u70"}}
    billing = await make_billing(FakeStripe(prices(), [subscription()], [other, known]))

    body = await billing.post("/billing/customers", {"user_id": "u7"})

    assert body == {"customer_id": "cus_known", "user_id": "u7", "created": False}
    assert billing.stripe.posts("/v1/customers") == []


async def test_a_user_id_that_could_escape_the_search_query_is_refused(billing: Billing) -> None:
    body = await billing.post("/billing/customers", {"user_id": "x' OR email:'a"}, 400)
    assert body["field"] == "user_id"
    assert [s for s in billing.stripe.sent if s.path.startswith("/v1/customers")] == []


async def test_checkout_session_for_the_catalog_price(billing: Billing) -> None:
    body = await billing.post("/billing/checkout-sessions", {**CHECKOUT, "trial_days": 14})

    (sent,) = billing.stripe.posts("/v1/checkout/sessions")
    form = sent.form
    assert form["mode"] == ["subscription"]
    assert form["customer"] == ["cus_alice"]
    assert form["line_items[0][price]"] == ["price_pro_y"]
    assert form["line_items[0][quantity]"] == ["1"]
    assert form["success_url"] == [CHECKOUT["success_url"]]
    assert form["cancel_url"] == [CHECKOUT["cancel_url"]]
    assert form["subscription_data[trial_period_days]"] == ["14"]
    assert "automatic_tax[enabled]" not in form  # STRIPE_AUTOMATIC_TAX_ENABLED is false
    assert key(sent).startswith("billstream-checkout-")
    assert body["id"].startswith("cs_")
    assert body["customer"] == "cus_alice"
    assert billing.counted("stripe_checkout_session_created_total") == 1


async def test_automatic_tax_when_enabled(make_billing: BillingFactory) -> None:
    billing = await make_billing(stripe_automatic_tax_enabled=True)
    await billing.post("/billing/checkout-sessions", CHECKOUT)
    await billing.post("/billing/subscriptions", {"customer_id": "cus_alice", "plan": "PRO"})

    (checkout,) = billing.stripe.posts("/v1/checkout/sessions")
    assert checkout.form["automatic_tax[enabled]"] == ["true"]
    assert checkout.form["customer_update[address]"] == ["auto"]
    (created,) = billing.stripe.posts("/v1/subscriptions")
    assert created.form["automatic_tax[enabled]"] == ["true"]


async def test_a_retried_checkout_sends_the_same_key_and_a_new_request_another(
    billing: Billing,
) -> None:
    await billing.post("/billing/checkout-sessions", CHECKOUT)
    await billing.post("/billing/checkout-sessions", CHECKOUT)
    await billing.post("/billing/checkout-sessions", {**CHECKOUT, "interval": "month"})

    keys = [key(s) for s in billing.stripe.posts("/v1/checkout/sessions")]
    assert keys[0] == keys[1]
    assert keys[2] != keys[0]


async def test_a_client_key_replays_the_first_answer_without_calling_stripe(
    billing: Billing,
) -> None:
    headers = {"Idempotency-Key": "click-7f3a"}
    first = await billing.client.post("/billing/checkout-sessions", json=CHECKOUT, headers=headers)
    again = await billing.client.post("/billing/checkout-sessions", json=CHECKOUT, headers=headers)

    (sent,) = billing.stripe.posts("/v1/checkout/sessions")
    assert key(sent) == "click-7f3a"
    assert await again.read() == await first.read()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert billing.counted("stripe_checkout_session_created_total") == 1

    other = {**CHECKOUT, "plan": "BUSINESS"}
    body = await billing.post("/billing/checkout-sessions", other, 409, headers)
    assert body["error"] == "idempotency_conflict"


async def test_plans_and_intervals_not_sold_are_422_and_bad_values_400(billing: Billing) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**CHECKOUT, "plan": "ENTERPRISE"}, 422, "plan"),
        ({**CHECKOUT, "plan": "FREE"}, 422, "plan"),  # in BILLING_PLAN_ORDER, but no price
        ({**CHECKOUT, "interval": "week"}, 422, "interval"),
        ({**CHECKOUT, "success_url": "javascript:alert(1)"}, 400, "success_url"),
        ({**CHECKOUT, "trial_days": 0}, 400, "trial_days"),
        ({**CHECKOUT, "customer_id": "alice"}, 400, "customer_id"),
        ({**CHECKOUT, "coupon": "X"}, 400, "coupon"),
        ({k: v for k, v in CHECKOUT.items() if k != "cancel_url"}, 400, "cancel_url"),
    ]
    for body, status, field in cases:
        answer = await billing.post("/billing/checkout-sessions", body, status)
        assert answer["field"] == field, (body, answer)
    response = await billing.client.post("/billing/checkout-sessions", data=b"[1]")
    assert response.status == 400
    assert (await response.json())["field"] == "body"
    assert billing.stripe.posts() == []


async def test_elements_subscription_is_created_incomplete_with_its_client_secret(
    billing: Billing,
) -> None:
    body = await billing.post(
        "/billing/subscriptions",
        {"customer_id": "cus_alice", "plan": "BUSINESS", "interval": "year", "trial_days": 7},
    )

    (sent,) = billing.stripe.posts("/v1/subscriptions")
    form = sent.form
    assert form["customer"] == ["cus_alice"]
    assert form["items[0][price]"] == ["price_biz_y"]
    assert form["payment_behavior"] == ["default_incomplete"]
    assert form["payment_settings[save_default_payment_method]"] == ["on_subscription"]
    assert form["expand[0]"] == ["latest_invoice.confirmation_secret"]
    assert form["expand[1]"] == ["pending_setup_intent"]
    assert form["trial_period_days"] == ["7"]
    assert key(sent).startswith("billstream-subscription-")
    assert body["subscription_id"].startswith("sub_")
    # stripe-mock's invoice has an empty confirmation secret, its setup intent a real one
    assert body["intent"] == "setup"
    assert body["client_secret"].startswith("seti_")


async def test_portal_session_with_return_url_and_configuration(billing: Billing) -> None:
    request = {"customer_id": "cus_alice", "return_url": "https://app.example.com/account"}
    body = await billing.post("/billing/portal-sessions", {**request, "configuration": "bpc_1"})
    await billing.post("/billing/portal-sessions", {**request, "configuration": "bpc_1"})

    first, second = billing.stripe.posts("/v1/billing_portal/sessions")
    assert first.form["customer"] == ["cus_alice"]
    assert first.form["return_url"] == [request["return_url"]]
    assert first.form["configuration"] == ["bpc_1"]
    assert key(first) == key(second)  # a double click within the 5-minute window
    assert key(first).startswith("billstream-portal-")
    assert body["url"].startswith("https://")
    assert body["customer"] == "cus_alice"
