"""Why a payment failed: Stripe's decline code of an invoice's failed attempt, bounded.

Where the reason lives depends on the API version (docs/state.md, "Decline codes"):
- any version, when the invoice payload carries its payment expanded: `payment_intent.
  last_payment_error` or `charge.outcome.reason` / `charge.failure_code` (before basil), or
  `payments.data[].payment.payment_intent.last_payment_error` (basil and later);
- before basil, `payment_intent.payment_failed` and `charge.failed` events name their
  `invoice`; basil removed that field from PaymentIntent and Charge, so from basil on a
  failure's reason is known only when the invoice payload carries it.
Codes are kept only when Stripe documents them (DECLINE_CODES), else `other`: the label set
of every metric and the cohort breakdowns stay bounded whatever a payload holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.parsing import Envelope, opt_id, opt_list, opt_mapping, opt_str
from billstream.tables.state import CustomerState, InvoiceState, evolve

# https://docs.stripe.com/declines/codes (card decline codes), as of 2026-12.
DECLINE_CODES = frozenset(
    {
        "authentication_required",
        "approve_with_id",
        "call_issuer",
        "card_not_supported",
        "card_velocity_exceeded",
        "currency_not_supported",
        "do_not_honor",
        "do_not_try_again",
        "duplicate_transaction",
        "expired_card",
        "fraudulent",
        "generic_decline",
        "incorrect_number",
        "incorrect_cvc",
        "incorrect_pin",
        "incorrect_zip",
        "insufficient_funds",
        "invalid_account",
        "invalid_amount",
        "invalid_cvc",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "invalid_number",
        "invalid_pin",
        "issuer_not_available",
        "lost_card",
        "merchant_blacklist",
        "new_account_information_available",
        "no_action_taken",
        "not_permitted",
        "offline_pin_required",
        "online_or_offline_pin_required",
        "pickup_card",
        "pin_try_exceeded",
        "processing_error",
        "reenter_transaction",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "service_not_allowed",
        "stolen_card",
        "stop_payment_order",
        "testmode_decline",
        "transaction_not_allowed",
        "try_again_later",
        "withdrawal_count_exceeded",
    }
)
OTHER = "other"
UNKNOWN = "unknown"  # metric label while no reason is known
# Every value `decline_code` can take on an episode (None aside), and as a metric label.
DECLINE_LABELS = (*sorted(DECLINE_CODES), OTHER, UNKNOWN)

PAYMENT_INTENT_FAILED = "payment_intent.payment_failed"
CHARGE_FAILED = "charge.failed"
RULE_TYPES = frozenset({PAYMENT_INTENT_FAILED, CHARGE_FAILED})


def bounded(code: str | None) -> str | None:
    """A documented decline code as is, any other code `other`, no code None."""
    if code is None:
        return None
    return code if code in DECLINE_CODES else OTHER


def from_payment_error(error: Mapping[str, Any]) -> str | None:
    """`last_payment_error`: its `decline_code`, else its `code` when that is a decline code
    (`expired_card`, `incorrect_cvc`: Stripe reports some declines as the error code)."""
    decline = opt_str(error, "decline_code")
    if decline is not None:
        return bounded(decline)
    code = opt_str(error, "code")
    if code is None:
        return None
    return code if code in DECLINE_CODES else OTHER


def from_charge(charge: Mapping[str, Any]) -> str | None:
    """A failed charge: `outcome.reason` (the decline reason), else `failure_code`."""
    reason = opt_str(opt_mapping(charge, "outcome"), "reason")
    if reason is not None and reason in DECLINE_CODES:
        return reason
    failure = opt_str(charge, "failure_code")
    if failure is None:
        return bounded(reason)
    return failure if failure in DECLINE_CODES else OTHER


def from_invoice(invoice: Mapping[str, Any]) -> str | None:
    """The reason an invoice payload carries for its failed attempt, if expanded."""
    intent = invoice.get("payment_intent")
    if isinstance(intent, Mapping):
        code = from_payment_error(opt_mapping(intent, "last_payment_error"))
        if code is not None:
            return code
    charge = invoice.get("charge")
    if isinstance(charge, Mapping):
        code = from_charge(charge)
        if code is not None:
            return code
    # basil+: the invoice's payments, newest first (Stripe lists them so).
    for entry in opt_list(opt_mapping(invoice, "payments"), "data"):
        if not isinstance(entry, Mapping):
            continue
        payment = opt_mapping(entry, "payment")
        intent = payment.get("payment_intent")
        if isinstance(intent, Mapping):
            code = from_payment_error(opt_mapping(intent, "last_payment_error"))
            if code is not None:
                return code
    return None


def record_decline(invoice: InvoiceState, code: str | None, at: int) -> InvoiceState:
    """Keep the reason of the latest failed attempt (by event time, whatever the order)."""
    if code is None:
        return invoice
    if invoice.decline_at is not None and at < invoice.decline_at:
        return invoice
    if invoice.decline_code == code and invoice.decline_at == at:
        return invoice
    return evolve(invoice, decline_code=code, decline_at=at)


def apply_payment_failure(
    state: CustomerState, event: Envelope, config: ReducerConfig, out: list[fx.Effect]
) -> None:
    """A failed PaymentIntent or Charge naming its invoice (before basil) gives the reason."""
    invoice_id = opt_id(event.obj, "invoice")
    if invoice_id is None:
        return  # basil+, or not an invoice payment: nothing links it to an episode
    if event.type == PAYMENT_INTENT_FAILED:
        code = from_payment_error(opt_mapping(event.obj, "last_payment_error"))
    else:
        code = from_charge(event.obj)
    invoice = state.invoices.get(invoice_id) or InvoiceState(invoice_id)
    state.invoices[invoice_id] = record_decline(invoice, code, event.created)
