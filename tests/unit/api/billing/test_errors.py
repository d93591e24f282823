"""Stripe's failures as the api answers them: 402 with Stripe's code, 400 naming the field,
404, 429 with Retry-After, 503 when Stripe cannot be reached — and nothing secret logged."""

from __future__ import annotations

import logging

import pytest

from tests.support.stripe_billing import error_body
from tests.unit.api.billing.conftest import Billing, BillingFactory

CHANGE = "/billing/subscriptions/sub_alice/change"
DECLINE = {
    "error": {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    }
}
SESSION = {
    "customer_id": "cus_alice",
    "plan": "PRO",
    "success_url": "https://app.example.com/private/path-xyz",
    "cancel_url": "https://app.example.com/billing",
}


async def test_a_declined_upgrade_is_a_402_with_stripes_codes(billing: Billing) -> None:
    billing.stripe.fail_next("post", "/v1/subscriptions/sub_alice", 402, DECLINE)

    body = await billing.post(CHANGE, {"plan": "BUSINESS"}, 402)

    assert body["error"] == "card_error"
    assert body["code"] == "card_declined"
    assert body["decline_code"] == "insufficient_funds"
    assert body["message"] == "Your card has insufficient funds."
    assert billing.counted("stripe_subscription_change_error_total", reason="card_error") == 1
    assert billing.counted("stripe_subscription_change_total", kind="upgrade") == 0


async def test_an_invalid_request_is_a_400_naming_stripes_parameter(billing: Billing) -> None:
    billing.stripe.fail_next(
        "post",
        "/v1/checkout/sessions",
        400,
        error_body(
            "invalid_request_error",
            "No such price: 'price_pro_m'",
            param="line_items[0][price]",
            code="resource_missing",
        ),
    )

    body = await billing.post("/billing/checkout-sessions", SESSION, 400)

    assert body["error"] == "invalid_request"
    assert body["field"] == "line_items[0][price]"
    assert body["code"] == "resource_missing"
    assert billing.counted("stripe_checkout_session_created_total") == 0


async def test_a_missing_subscription_is_a_404(billing: Billing) -> None:
    billing.stripe.fail_next(
        "get",
        "/v1/subscriptions/sub_alice",
        404,
        error_body("invalid_request_error", "No such subscription", param="id"),
    )
    body = await billing.post(CHANGE, {"plan": "BUSINESS"}, 404)
    assert body["error"] == "not_found"
    assert billing.counted("stripe_subscription_change_error_total", reason="not_found") == 1


async def test_stripe_rate_limiting_is_a_429_with_retry_after(billing: Billing) -> None:
    billing.stripe.fail_next(
        "post",
        "/v1/subscriptions/sub_alice",
        429,
        error_body("invalid_request_error", "Too many requests", code="rate_limit"),
    )
    response = await billing.client.post(CHANGE, json={"plan": "BUSINESS"})
    assert response.status == 429
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["error"] == "rate_limited"
    assert billing.counted("stripe_subscription_change_error_total", reason="rate_limited") == 1


@pytest.mark.parametrize("status", [500, 502])
async def test_stripes_own_errors_are_a_503(billing: Billing, status: int) -> None:
    billing.stripe.fail_next("post", "/v1/billing_portal", status, error_body("api_error", "x"))
    request = {"customer_id": "cus_alice", "return_url": "https://app.example.com/a"}
    response = await billing.client.post("/billing/portal-sessions", json=request)
    assert response.status == 503
    assert (await response.json())["error"] == "stripe_unavailable"
    assert "Retry-After" in response.headers


async def test_stripe_unreachable_is_a_503(
    make_billing: BillingFactory, closed_port_url: str
) -> None:
    billing = await make_billing(stripe_api_base=closed_port_url, loaded=False)

    body = await billing.post("/billing/customers", {"user_id": "u1"}, 503)
    assert body["error"] == "stripe_unavailable"
    catalog = await billing.client.get("/billing/catalog")
    assert catalog.status == 503  # never loaded: nothing to serve
    assert (await catalog.json())["error"] == "catalog_unavailable"
    preview = await billing.post(
        "/billing/subscriptions/sub_alice/preview", {"plan": "PRO"}, 503
    )  # the catalog is needed to classify
    assert preview["error"] == "catalog_unavailable"


async def test_a_refused_api_key_is_a_503_not_the_callers_fault(
    make_billing: BillingFactory,
) -> None:
    billing = await make_billing(stripe_api_key="not_a_stripe_key", loaded=False)
    body = await billing.post("/billing/customers", {"user_id": "u1"}, 503)
    assert body["error"] == "stripe_misconfigured"


async def test_no_secret_key_card_data_or_payload_in_the_logs(
    make_billing: BillingFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    billing = await make_billing()
    billing.stripe.fail_next("post", "/v1/subscriptions/sub_alice", 402, DECLINE)
    billing.stripe.fail_next(
        "post",
        "/v1/checkout/sessions",
        400,
        error_body("invalid_request_error", "bad", param="success_url"),
    )
    await billing.post(CHANGE, {"plan": "BUSINESS"}, 402)
    await billing.post("/billing/checkout-sessions", SESSION, 400)
    await billing.post("/billing/customers", {"user_id": "u-9", "email": "ada@example.com"})

    logged = caplog.text
    assert "stripe call failed: CardError" in logged  # the failure is visible...
    secret = billing.settings.stripe_api_key
    assert secret is not None
    for private in (secret.get_secret_value(), "insufficient_funds", "path-xyz", "ada@example"):
        assert private not in logged  # ...but not the key, the card's story or the payload
