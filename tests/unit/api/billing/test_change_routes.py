"""Preview and change: the classification, the proration policy on the parameters sent, the
promised state, the idempotency key and the metrics (docs/proration-policy.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.account_state import make_state
from tests.support.stripe_billing import FakeStripe
from tests.unit.api.billing.conftest import (
    PERIOD_END,
    Billing,
    BillingFactory,
    prices,
    subscription,
)

PREVIEW = "/billing/subscriptions/sub_alice/preview"
CHANGE = "/billing/subscriptions/sub_alice/change"


async def on(make_billing: BillingFactory, price: str, **fields: Any) -> Billing:
    return await make_billing(FakeStripe(prices(), [subscription(price=price, **fields)]))


def invoice_preview(billing: Billing) -> dict[str, Any]:
    (answer,) = [a for m, p, a in billing.stripe.answers if p == "/v1/invoices/create_preview"]
    return answer


def one(billing: Billing, path: str) -> dict[str, list[str]]:
    (sent,) = billing.stripe.posts(path)
    form: dict[str, list[str]] = sent.form
    return form


async def test_upgrade_preview_asks_for_the_invoice_now_with_proration(billing: Billing) -> None:
    body = await billing.post(PREVIEW, {"plan": "BUSINESS"})

    form = one(billing, "/v1/invoices/create_preview")
    assert form["customer"] == ["cus_alice"]
    assert form["subscription"] == ["sub_alice"]
    item = billing.stripe.subscriptions["sub_alice"]["items"]["data"][0]["id"]
    assert form["subscription_details[items][0][id]"] == [item]
    assert form["subscription_details[items][0][price]"] == ["price_biz_m"]
    assert form["subscription_details[proration_behavior]"] == ["always_invoice"]
    assert form["subscription_details[proration_date]"] == [str(body["proration_date"])]
    assert billing.stripe.posts("/v1/subscriptions/sub_alice") == []  # a preview changes nothing
    assert body["kind"] == "upgrade"
    assert body["effective"] == "now"
    assert body["from"] == {"plan": "PRO", "interval": "month"}
    assert body["to"] == {"plan": "BUSINESS", "interval": "month"}
    preview = invoice_preview(billing)
    assert body["amount_due_now"] == preview["amount_due"]
    assert body["currency"] == preview["currency"]
    assert body["promised"] == {
        "plan": "BUSINESS",
        "interval": "month",
        "pending_plan": None,
        "cancel_at_period_end": False,
    }
    assert billing.counted("stripe_subscription_preview_total") == 1


async def test_upgrade_applies_now_prorated_invoiced_and_refused_if_unpaid(
    billing: Billing,
) -> None:
    preview = await billing.post(PREVIEW, {"plan": "BUSINESS"})
    body = await billing.post(
        CHANGE, {"plan": "BUSINESS", "proration_date": preview["proration_date"]}
    )

    form = one(billing, "/v1/subscriptions/sub_alice")
    assert form["items[0][price]"] == ["price_biz_m"]
    assert form["proration_behavior"] == ["always_invoice"]
    assert form["payment_behavior"] == ["error_if_incomplete"]
    assert form["proration_date"] == [str(preview["proration_date"])]  # charged as previewed
    assert form["cancel_at_period_end"] == ["false"]
    assert form["metadata[pending_plan]"] == [""]
    assert body["kind"] == "upgrade"
    assert body["applied"] is True
    assert body["promised"] == preview["promised"]
    assert billing.counted("stripe_subscription_change_total", kind="upgrade") == 1


async def test_downgrade_is_deferred_to_the_period_end_without_proration(
    make_billing: BillingFactory,
) -> None:
    billing = await on(make_billing, "price_biz_m")
    preview = await billing.post(PREVIEW, {"plan": "PRO"})
    body = await billing.post(CHANGE, {"plan": "PRO"})

    shown = one(billing, "/v1/invoices/create_preview")
    assert shown["subscription_details[items][0][price]"] == ["price_pro_m"]
    assert shown["subscription_details[proration_behavior]"] == ["none"]
    assert "subscription_details[proration_date]" not in shown
    assert preview["amount_due_now"] == 0
    assert preview["next_invoice_amount"] == invoice_preview(billing)["amount_due"]
    assert preview["effective"] == "period_end"
    assert preview["effective_at"] == PERIOD_END
    assert preview["proration_date"] is None

    form = one(billing, "/v1/subscriptions/sub_alice")
    assert form["metadata[pending_plan]"] == ["PRO"]  # what the reconciliation applies
    assert form["proration_behavior"] == ["none"]
    assert form["cancel_at_period_end"] == ["false"]
    assert not any(name.startswith("items") for name in form)  # the price stays until then
    promised = {
        "plan": "BUSINESS",
        "interval": "month",
        "pending_plan": "PRO",
        "cancel_at_period_end": False,
    }
    assert preview["promised"] == body["promised"] == promised
    assert billing.counted("stripe_subscription_change_total", kind="downgrade") == 1


async def test_downgrade_to_the_default_plan_without_a_price_cancels_at_period_end(
    billing: Billing,
) -> None:
    preview = await billing.post(PREVIEW, {"plan": "FREE"})
    body = await billing.post(CHANGE, {"plan": "FREE"})

    assert billing.stripe.posts("/v1/invoices/create_preview") == []  # nothing to invoice
    assert preview["amount_due_now"] == 0
    form = one(billing, "/v1/subscriptions/sub_alice")
    assert form["cancel_at_period_end"] == ["true"]
    assert form["proration_behavior"] == ["none"]
    assert form["metadata[pending_plan]"] == [""]
    assert body["promised"] == {
        "plan": "PRO",
        "interval": "month",
        "pending_plan": None,
        "cancel_at_period_end": True,
    }


async def test_a_downgrade_that_also_switches_interval_is_refused(
    make_billing: BillingFactory,
) -> None:
    billing = await on(make_billing, "price_biz_m")
    body = await billing.post(CHANGE, {"plan": "PRO", "interval": "year"}, 422)
    assert body["field"] == "interval"
    assert billing.stripe.posts() == []
    assert billing.counted("stripe_subscription_change_error_total", reason="unprocessable") == 1


async def test_interval_switch_applies_now_with_proration(billing: Billing) -> None:
    preview = await billing.post(PREVIEW, {"plan": "PRO", "interval": "year"})
    body = await billing.post(CHANGE, {"plan": "PRO", "interval": "year"})

    assert preview["kind"] == body["kind"] == "interval_switch"
    shown = one(billing, "/v1/invoices/create_preview")
    assert shown["subscription_details[proration_behavior]"] == ["always_invoice"]
    form = one(billing, "/v1/subscriptions/sub_alice")
    assert form["items[0][price]"] == ["price_pro_y"]
    assert form["proration_behavior"] == ["always_invoice"]
    assert body["promised"]["interval"] == "year"
    assert billing.counted("stripe_subscription_change_total", kind="interval_switch") == 1


async def test_the_current_plan_is_a_no_op_or_withdraws_a_scheduled_downgrade(
    make_billing: BillingFactory,
) -> None:
    billing = await on(make_billing, "price_biz_m")
    plain = await billing.post(CHANGE, {"plan": "BUSINESS"})
    assert plain["kind"] == "noop"
    assert plain["applied"] is False
    assert billing.stripe.posts() == []

    billing.stripe.subscriptions["sub_alice"]["metadata"] = {"pending_plan": "PRO"}
    withdrawn = await billing.post(CHANGE, {"plan": "BUSINESS"})
    form = one(billing, "/v1/subscriptions/sub_alice")
    assert form["metadata[pending_plan]"] == [""]
    assert form["cancel_at_period_end"] == ["false"]
    assert withdrawn["applied"] is True
    assert withdrawn["promised"]["pending_plan"] is None
    assert billing.counted("stripe_subscription_change_total", kind="noop") == 2


async def test_a_retried_change_sends_the_same_key_a_later_one_a_new_key(
    make_billing: BillingFactory,
) -> None:
    billing = await on(make_billing, "price_biz_m")
    version = 1
    billing.store.apply([make_state("cus_alice", version, plan="BUSINESS")])
    for _ in range(2):  # a retry: Stripe's webhook has not changed the subscription yet...
        billing.stripe.subscriptions["sub_alice"]["metadata"] = {}
        await billing.post(CHANGE, {"plan": "PRO"})
    for plan in ("BUSINESS", "PRO"):  # ...withdraw it, schedule it again: a new request
        version += 1  # the webhook of the previous change was folded
        billing.store.apply([make_state("cus_alice", version, plan="BUSINESS")])
        await billing.post(CHANGE, {"plan": plan})

    keys = [
        s.headers["Idempotency-Key"] for s in billing.stripe.posts("/v1/subscriptions/sub_alice")
    ]
    assert len(keys) == 4
    assert keys[0] == keys[1]
    assert len(set(keys)) == 3
    assert all(k.startswith("billstream-change-") for k in keys)


async def test_another_customers_subscription_is_not_found(billing: Billing) -> None:
    body = await billing.post(CHANGE, {"plan": "BUSINESS", "customer_id": "cus_mallory"}, 404)
    assert body["error"] == "not_found"
    assert billing.stripe.posts() == []
    assert billing.counted("stripe_subscription_change_error_total", reason="not_found") == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"status": "canceled"}, "subscription_not_changeable"),
        ({"items": {"object": "list", "data": []}}, "subscription_has_no_plan"),
    ],
)
async def test_a_subscription_that_cannot_change_is_a_409(
    make_billing: BillingFactory, fields: dict[str, Any], error: str
) -> None:
    billing = await on(make_billing, "price_pro_m", **fields)
    body = await billing.post(CHANGE, {"plan": "BUSINESS"}, 409)
    assert body["error"] == error
    assert billing.counted("stripe_subscription_change_error_total", reason="conflict") == 1


async def test_unknown_plan_or_interval_is_422_and_counted(billing: Billing) -> None:
    assert (await billing.post(PREVIEW, {"plan": "GOLD"}, 422))["field"] == "plan"
    assert (await billing.post(CHANGE, {"plan": "PRO", "interval": "day"}, 422))["field"] == (
        "interval"
    )
    assert billing.counted("stripe_subscription_change_error_total", reason="unprocessable") == 2
    assert billing.stripe.posts() == []


async def test_a_declined_upgrade_retried_with_a_new_card_is_a_new_request(
    billing: Billing,
) -> None:
    decline = {"error": {"type": "card_error", "code": "card_declined", "message": "Declined"}}
    billing.stripe.fail_next("post", "/v1/subscriptions/sub_alice", 402, decline)
    await billing.post(CHANGE, {"plan": "BUSINESS"}, 402)  # Stripe keeps this answer for the key
    await billing.post(
        "/billing/subscriptions/sub_alice/default-payment-method", {"payment_method": "pm_new"}
    )
    await billing.post(CHANGE, {"plan": "BUSINESS"})

    first, _, retried = billing.stripe.posts("/v1/subscriptions/sub_alice")
    assert first.form["items[0][price]"] == retried.form["items[0][price]"]
    assert first.headers["Idempotency-Key"] != retried.headers["Idempotency-Key"]
