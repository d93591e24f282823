"""The fields real Stripe payloads carry beyond what the reducer reads, for realistic sizes.

Test factories build minimal objects (~0.6 KB per event); a live subscription or invoice event
is 2-5 KB. The benchmark adds these (values as Stripe sends them, mostly nulls and small
objects) so parsing and copying cost what they cost in production. The reducer ignores them.
"""

from __future__ import annotations

import copy
from typing import Any

SUBSCRIPTION_EXTRA: dict[str, Any] = {
    "application": None,
    "application_fee_percent": None,
    "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
    "billing_cycle_anchor": 1767225600,
    "billing_cycle_anchor_config": None,
    "billing_mode": {"type": "classic"},
    "billing_thresholds": None,
    "cancel_at": None,
    "canceled_at": None,
    "cancellation_details": {"comment": None, "feedback": None, "reason": None},
    "collection_method": "charge_automatically",
    "days_until_due": None,
    "default_payment_method": "pm_1QxYzAbCdEfGhIjKlMnOpQrS",
    "default_source": None,
    "default_tax_rates": [],
    "description": None,
    "discounts": [],
    "ended_at": None,
    "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
    "latest_invoice": "in_1QxYzAbCdEfGhIjKlMnOpQrS",
    "next_pending_invoice_item_invoice": None,
    "on_behalf_of": None,
    "pause_collection": None,
    "payment_settings": {
        "payment_method_options": {
            "card": {"network": None, "request_three_d_secure": "automatic"},
            "customer_balance": None,
            "us_bank_account": None,
        },
        "payment_method_types": None,
        "save_default_payment_method": "off",
    },
    "pending_invoice_item_interval": None,
    "pending_setup_intent": None,
    "pending_update": None,
    "schedule": None,
    "start_date": 1767225600,
    "test_clock": None,
    "transfer_data": None,
    "trial_end": None,
    "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
    "trial_start": None,
}

PRICE_EXTRA: dict[str, Any] = {
    "billing_scheme": "per_unit",
    "created": 1735689600,
    "custom_unit_amount": None,
    "livemode": False,
    "metadata": {},
    "nickname": None,
    "tax_behavior": "unspecified",
    "tiers_mode": None,
    "transform_quantity": None,
    "unit_amount_decimal": "2900",
}

INVOICE_EXTRA: dict[str, Any] = {
    "account_country": "US",
    "account_name": "Example SaaS, Inc.",
    "account_tax_ids": None,
    "amount_overpaid": 0,
    "amount_remaining": 2900,
    "amount_shipping": 0,
    "application": None,
    "auto_advance": True,
    "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
    "automatically_finalizes_at": None,
    "billing_reason": "subscription_cycle",
    "created": 1767225600,
    "custom_fields": None,
    "customer_address": {
        "city": "Springfield",
        "country": "US",
        "line1": "742 Evergreen Terrace",
        "line2": None,
        "postal_code": "97403",
        "state": "OR",
    },
    "customer_email": "jane.doe@example.com",
    "customer_name": "Jane Doe",
    "customer_phone": None,
    "customer_shipping": None,
    "customer_tax_exempt": "none",
    "customer_tax_ids": [],
    "default_payment_method": None,
    "default_source": None,
    "default_tax_rates": [],
    "description": None,
    "discounts": [],
    "due_date": None,
    "effective_at": 1767229200,
    "ending_balance": 0,
    "footer": None,
    "from_invoice": None,
    "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1Abc/test_YWNjdF8xQWJjLF9TZXhhbXBsZQ",
    "invoice_pdf": "https://pay.stripe.com/invoice/acct_1Abc/test_YWNjdF8xQWJjLF9TZXhhbXBsZQ/pdf",
    "issuer": {"type": "self"},
    "last_finalization_error": None,
    "latest_revision": None,
    "lines": {
        "object": "list",
        "data": [
            {
                "id": "il_1QxYzAbCdEfGhIjKlMnOpQrS",
                "object": "line_item",
                "amount": 2900,
                "currency": "usd",
                "description": "1 x Pro (at $29.00 / month)",
                "discount_amounts": [],
                "discountable": True,
                "discounts": [],
                "livemode": False,
                "metadata": {},
                "parent": {
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": "sub_1QxYz",
                        "subscription_item": "si_1QxYz",
                    },
                    "type": "subscription_item_details",
                },
                "period": {"end": 1769904000, "start": 1767225600},
                "pretax_credit_amounts": [],
                "pricing": {
                    "price_details": {"price": "price_pro_monthly", "product": "prod_pro"},
                    "type": "price_details",
                    "unit_amount_decimal": "2900",
                },
                "quantity": 1,
                "taxes": [],
            }
        ],
        "has_more": False,
        "total_count": 1,
        "url": "/v1/invoices/in_1QxYzAbCdEfGhIjKlMnOpQrS/lines",
    },
    "next_payment_attempt": 1767315600,
    "number": "A1B2C3D4-0001",
    "on_behalf_of": None,
    "payment_settings": {
        "default_mandate": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": None,
    },
    "period_end": 1767225600,
    "period_start": 1764547200,
    "post_payment_credit_notes_amount": 0,
    "pre_payment_credit_notes_amount": 0,
    "receipt_number": None,
    "rendering": None,
    "shipping_cost": None,
    "shipping_details": None,
    "starting_balance": 0,
    "statement_descriptor": None,
    "status_transitions": {
        "finalized_at": 1767229200,
        "marked_uncollectible_at": None,
        "paid_at": None,
        "voided_at": None,
    },
    "subtotal": 2900,
    "subtotal_excluding_tax": 2900,
    "test_clock": None,
    "total": 2900,
    "total_discount_amounts": [],
    "total_excluding_tax": 2900,
    "total_pretax_credit_amounts": [],
    "total_taxes": [],
    "webhooks_delivered_at": 1767229200,
}


def with_stripe_fields(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of `event` whose object carries the extra fields of its Stripe type."""
    event = copy.deepcopy(event)
    obj = event["data"]["object"]
    kind = obj.get("object")
    if kind == "subscription":
        for key, value in SUBSCRIPTION_EXTRA.items():
            obj.setdefault(key, copy.deepcopy(value))
        for item in obj.get("items", {}).get("data", []):
            for key, value in PRICE_EXTRA.items():
                item["price"].setdefault(key, value)
            item.setdefault("plan", dict(item["price"], object="plan"))
    elif kind == "invoice":
        for key, value in INVOICE_EXTRA.items():
            obj.setdefault(key, copy.deepcopy(value))
    return event
