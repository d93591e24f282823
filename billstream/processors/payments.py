"""Partial payments and invoice notices: only an invoice paid in full closes its episodes.

Since 2025-03-31.basil an invoice can be paid in several parts (docs/state.md, "Partial
payments"). `invoice.paid` / `invoice.payment_succeeded` whose invoice still shows an amount
remaining close nothing; the other events here are counted and change no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.invoices import apply_invoice_event
from billstream.processors.parsing import Envelope, opt_int, opt_str, req_str
from billstream.tables.state import CustomerState

# Counted in stripe_invoice_notice_total{type}; none opens, extends or closes an episode.
NOTICE_TYPES = (
    "invoice.overdue",
    "invoice.payment_attempt_required",
    "invoice.will_be_due",
    "invoice_payment.paid",
)
NOTICES = {event_type: fx.InvoiceNotice(event_type) for event_type in NOTICE_TYPES}


def paid_in_full(invoice: Mapping[str, Any]) -> bool:
    """False when the invoice shows an amount still to pay; absent fields mean paid in full.

    Old shapes (and `paid_out_of_band`) always arrive paid in full, so only a positive
    `amount_remaining` or a `status` still `open` marks a partial payment.
    """
    remaining = opt_int(invoice, "amount_remaining")
    if remaining is not None and remaining > 0:
        return False
    return opt_str(invoice, "status") != "open"


def apply_payment_event(
    state: CustomerState, event: Envelope, config: ReducerConfig, out: list[fx.Effect]
) -> None:
    """`invoice.paid` / `invoice.payment_succeeded`: the invoice rule, once nothing remains."""
    if paid_in_full(event.obj):
        apply_invoice_event(state, event, config, out)
    else:
        out.append(fx.InvoicePartiallyPaid(req_str(event.obj, "id")))
