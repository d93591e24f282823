"""Invoice rules: dunning and SCA episodes per invoice id, and the payment_state they imply."""

from __future__ import annotations

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.declines import from_invoice, record_decline
from billstream.processors.episodes import note_attempts
from billstream.processors.parsing import Envelope, req_str
from billstream.processors.shapes import invoice_subscription
from billstream.processors.statuses import is_terminal
from billstream.tables.state import CustomerState, InvoiceState, evolve

FAILED = "invoice.payment_failed"
ACTION_REQUIRED = "invoice.payment_action_required"
PAID = frozenset({"invoice.paid", "invoice.payment_succeeded"})
LOST = frozenset({"invoice.voided", "invoice.marked_uncollectible"})
RULE_TYPES = frozenset({FAILED, ACTION_REQUIRED}) | PAID | LOST


def apply_invoice_event(
    state: CustomerState, event: Envelope, config: ReducerConfig, out: list[fx.Effect]
) -> None:
    """Open, extend or close the invoice's episodes; a closed invoice never reopens."""
    invoice_id = req_str(event.obj, "id")
    invoice = state.invoices.get(invoice_id)
    if invoice is None:
        invoice = InvoiceState(invoice_id, invoice_subscription(event.obj))
    elif invoice.subscription_id is None:
        invoice = evolve(invoice, subscription_id=invoice_subscription(event.obj))
    if event.type == FAILED:
        out.append(fx.InvoiceFailed(invoice_id))
        invoice = _open_dunning(invoice, event.created, out)
        invoice = note_attempts(invoice, event.obj)
        invoice = record_decline(invoice, from_invoice(event.obj), event.created)
    elif event.type == ACTION_REQUIRED:
        out.append(fx.InvoiceActionRequired(invoice_id))
        invoice = _open_sca(invoice, event.created, out)
    elif event.type in PAID:
        invoice = _pay(invoice, event.created, out)
    else:
        invoice = _lose(invoice, event.created, out)
    state.invoices[invoice_id] = settle(state, invoice, event.created, out)


def _late_opening(invoice: InvoiceState, at: int, opened: str) -> InvoiceState:
    """A closed invoice reopens nothing; but a failure (or SCA request) from before it closed,
    delivered late, tells when its episode really opened: the episode record (episodes.py)
    starts there, as in created order."""
    current = getattr(invoice, opened)
    if (
        invoice.closed_at is None
        or at >= invoice.closed_at
        or (current is not None and current <= at)
    ):
        return invoice
    return evolve(invoice, **{opened: at})


def _open_dunning(invoice: InvoiceState, at: int, out: list[fx.Effect]) -> InvoiceState:
    if invoice.outcome is not None:
        # A late failure of a paid or lost invoice opens nothing (no state, no counter).
        return _late_opening(invoice, at, "dunning_opened")
    if invoice.dunning_since is None:
        out.append(fx.DunningEntered(invoice.id))
        return evolve(invoice, dunning_since=at)
    # Repeated failures are one episode, which started at the earliest failure seen.
    if at >= invoice.dunning_since:
        return invoice
    return evolve(invoice, dunning_since=at)


def _open_sca(invoice: InvoiceState, at: int, out: list[fx.Effect]) -> InvoiceState:
    if invoice.outcome is not None:
        return _late_opening(invoice, at, "sca_opened")
    if invoice.sca_since is None:
        out.append(fx.ScaEntered(invoice.id))
        return evolve(invoice, sca_since=at)
    if at >= invoice.sca_since:
        return invoice
    return evolve(invoice, sca_since=at)


def _pay(invoice: InvoiceState, at: int, out: list[fx.Effect]) -> InvoiceState:
    if not invoice.paid:
        out.append(fx.InvoicePaid(invoice.id))
    if invoice.outcome is not None:
        # Paying a lost invoice is not a recovery.
        return invoice if invoice.paid else evolve(invoice, paid=True)
    if invoice.dunning_since is not None:
        out.append(fx.DunningRecovered(invoice.id, max(0, at - invoice.dunning_since)))
    if invoice.sca_since is not None:
        out.append(fx.ScaCompleted(invoice.id, max(0, at - invoice.sca_since)))
    return InvoiceState(
        invoice.id, invoice.subscription_id, outcome="paid", closed_at=at, paid=True
    )


def _lose(invoice: InvoiceState, at: int, out: list[fx.Effect]) -> InvoiceState:
    if invoice.outcome is not None:
        return invoice
    if invoice.dunning_since is not None:
        out.append(fx.DunningLost(invoice.id))
    if invoice.sca_since is not None:
        out.append(fx.ScaLost(invoice.id))
    return evolve(invoice, dunning_since=None, sca_since=None, outcome="lost", closed_at=at)


def settle(
    state: CustomerState, invoice: InvoiceState, at: int, out: list[fx.Effect]
) -> InvoiceState:
    """Lose open episodes whose subscription ended for good, or ended after they began.

    Comparing with the subscription's latest ending time (not the delivery order) gives the
    same result as created-order processing, whichever event arrives first.
    """
    if not invoice.is_open or invoice.subscription_id is None:
        return invoice
    subscription = state.subscriptions.get(invoice.subscription_id)
    if subscription is None:
        return invoice
    since = min(t for t in (invoice.dunning_since, invoice.sca_since) if t is not None)
    ended = subscription.ended_at is not None and subscription.ended_at >= since
    if is_terminal(subscription) or ended:
        return _lose(invoice, at, out)
    return invoice


def settle_subscription(
    state: CustomerState, subscription_id: str, at: int, out: list[fx.Effect]
) -> None:
    """Re-check the open invoices of one subscription after it changed."""
    if not state.invoices:
        return
    affected = [
        (invoice_id, invoice)
        for invoice_id, invoice in state.invoices.items()
        if invoice.subscription_id == subscription_id and invoice.is_open
    ]
    for invoice_id, invoice in sorted(affected):
        state.invoices[invoice_id] = settle(state, invoice, at, out)


def payment_state(state: CustomerState) -> str:
    """`past_due` while any dunning episode is open, else `requires_action` for SCA, else ok."""
    found = "ok"
    for invoice in state.invoices.values():
        if invoice.dunning_since is not None:
            return "past_due"
        if invoice.sca_since is not None:
            found = "requires_action"
    return found


def _expired(invoice: InvoiceState, horizon: int) -> bool:
    """Closed before `horizon`, or only a decline reason older than it that no episode took."""
    if invoice.closed_at is not None:
        return invoice.closed_at < horizon
    return (
        invoice.decline_at is not None
        and invoice.decline_at < horizon
        and not invoice.is_open
        and invoice.dunning_opened is None
        and invoice.sca_opened is None
    )


def prune_closed(state: CustomerState, horizon: int, closed_horizon: int) -> None:
    """Forget invoices closed before `horizon` (the de-duplication horizon), each leaving a
    compact tombstone (closed_at, outcome) until `closed_horizon`.

    The tombstone keeps a replayed failure from reopening the invoice for as long as
    `billstream backfill` can republish it (Stripe keeps events 30 days), while the episode
    rules and records see the invoice forgotten at the same time as before.
    """
    tombstones = state.closed_invoices
    if tombstones and min(closed_at for closed_at, _ in tombstones.values()) < closed_horizon:
        state.closed_invoices = {i: t for i, t in tombstones.items() if t[0] >= closed_horizon}
    for invoice in state.invoices.values():
        if _expired(invoice, horizon):
            break
    else:
        return  # the usual case: nothing to forget
    kept: dict[str, InvoiceState] = {}
    buried = dict(state.closed_invoices)
    for invoice_id, invoice in state.invoices.items():
        if not _expired(invoice, horizon):
            kept[invoice_id] = invoice
        elif invoice.closed_at is not None and invoice.closed_at >= closed_horizon:
            buried[invoice_id] = (invoice.closed_at, invoice.outcome or "lost")
    state.invoices = kept
    state.closed_invoices = buried


def is_buried(state: CustomerState, event: Envelope) -> bool:
    """An invoice event for an invoice closed past the de-duplication horizon: a replay (or a
    payment of a long-lost invoice), which changes nothing."""
    if not state.closed_invoices:
        return False
    invoice_id = event.obj.get("id")
    return isinstance(invoice_id, str) and invoice_id in state.closed_invoices
