"""Dunning and SCA episodes as records of `billing.invoice-episodes` (docs/DESIGN.md).

The invoice rules (invoices.py) open and close episodes; this module only watches what they
did: after each event, every invoice record that changed is compared with its predecessor, the
facts an episode record carries are kept across the rules' resets (when it opened, attempts,
decline code, plan), and a changed episode is emitted with the invoice's next version. Keeping
it out of the rules means no rule can forget to emit, and replays emit nothing new.

Records are keyed `<invoice id>:<kind>`: one invoice often has both (an off-session renewal that
needs 3-D Secure is also a failed attempt), and a compacted topic keyed by the invoice alone
would keep only one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billstream.processors import effects as fx
from billstream.tables.state import CustomerState, InvoiceState, evolve

DUNNING, SCA = "dunning", "sca"
KINDS = (DUNNING, SCA)
OPEN, RECOVERED, COMPLETED, LOST = "open", "recovered", "completed", "lost"
STATES = (OPEN, RECOVERED, COMPLETED, LOST)
_PAID_STATE = {DUNNING: RECOVERED, SCA: COMPLETED}


def episode_key(invoice_id: str, kind: str) -> str:
    return f"{invoice_id}:{kind}"


def _since(invoice: InvoiceState, kind: str) -> int | None:
    return invoice.dunning_since if kind == DUNNING else invoice.sca_since


def _opened(invoice: InvoiceState, kind: str) -> int | None:
    return invoice.dunning_opened if kind == DUNNING else invoice.sca_opened


def episode(invoice: InvoiceState, kind: str, customer_id: str) -> dict[str, Any] | None:
    """The record of one episode of `invoice`, or None if that kind never opened."""
    opened = _opened(invoice, kind)
    if opened is None:
        return None
    since = _since(invoice, kind)
    if since is not None:
        state, closed_at = OPEN, None
    else:
        state = _PAID_STATE[kind] if invoice.outcome == "paid" else LOST
        closed_at = invoice.closed_at
    return {
        "invoice_id": invoice.id,
        "kind": kind,
        "customer_id": customer_id,
        "subscription_id": invoice.subscription_id,
        "state": state,
        "opened_at": since if since is not None else opened,
        "closed_at": closed_at,
        "attempts": invoice.attempts,
        "decline_code": invoice.decline_code,
        "plan": invoice.plan,
        "version": invoice.episode_version,
    }


def _carry(before: InvoiceState | None, after: InvoiceState, plan: str | None) -> InvoiceState:
    """`after` with the episode facts the rules do not keep themselves, and `plan`."""
    dunning_opened = after.dunning_since
    sca_opened = after.sca_since
    if before is not None:
        dunning_opened = _earliest(dunning_opened, before.dunning_opened, after.dunning_opened)
        sca_opened = _earliest(sca_opened, before.sca_opened, after.sca_opened)
    changes: dict[str, Any] = {}
    if dunning_opened != after.dunning_opened:
        changes["dunning_opened"] = dunning_opened
    if sca_opened != after.sca_opened:
        changes["sca_opened"] = sca_opened
    if before is not None:
        for name in ("attempts", "episode_version"):
            if getattr(before, name) > getattr(after, name):
                changes[name] = getattr(before, name)
        if before.decline_at is not None and (
            after.decline_at is None or before.decline_at > after.decline_at
        ):
            changes["decline_code"] = before.decline_code
            changes["decline_at"] = before.decline_at
    opened = dunning_opened is not None or sca_opened is not None
    if opened and plan != after.plan:
        changes["plan"] = plan
    return evolve(after, **changes) if changes else after


def _earliest(*times: int | None) -> int | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def note_attempts(invoice: InvoiceState, obj: Mapping[str, Any]) -> InvoiceState:
    """Failed attempts: the invoice's `attempt_count` (Stripe's own count) when it says more."""
    count = obj.get("attempt_count")
    if type(count) is int and count > invoice.attempts:
        return evolve(invoice, attempts=count)
    return invoice


def track_episodes(
    before: CustomerState | None, state: CustomerState, out: list[fx.Effect]
) -> None:
    """Emit every episode the event changed, each invoice's version bumped once."""
    if not state.invoices:
        return
    old_invoices = before.invoices if before is not None else {}
    old_subscriptions = before.subscriptions if before is not None else {}
    changed = {
        sid for sid, sub in state.subscriptions.items() if old_subscriptions.get(sid) is not sub
    }
    for invoice_id, invoice in list(state.invoices.items()):
        old = old_invoices.get(invoice_id)
        if old is invoice and invoice.subscription_id not in changed:
            continue
        new = _carry(old, invoice, _plan(state, invoice, old))
        kinds = []
        for kind in KINDS:
            record = episode(new, kind, state.customer_id)
            previous = None if old is None else episode(old, kind, state.customer_id)
            if record is not None and (previous is None or _differs(previous, record)):
                kinds.append(kind)
        if kinds:
            new = evolve(new, episode_version=new.episode_version + 1)
            for kind in kinds:
                record = episode(new, kind, state.customer_id)
                assert record is not None
                out.append(fx.EpisodeChanged(record))
        if new is not invoice:
            state.invoices[invoice_id] = new


def _plan(state: CustomerState, invoice: InvoiceState, old: InvoiceState | None) -> str | None:
    """The plan an episode is counted under: its subscription's, whatever the delivery order
    (kept once known); none for an invoice of no known subscription (a one-off invoice). Not
    the account's plan of the moment: that would depend on when the event arrived, and a
    replay of an old failure would re-file the episode."""
    subscription = state.subscriptions.get(invoice.subscription_id or "")
    if subscription is not None:
        return subscription.plan
    for known in (invoice.plan, None if old is None else old.plan):
        if known is not None:
            return known
    return None


def _differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(old[name] != new[name] for name in new if name != "version")


def current_episodes(state: CustomerState) -> list[dict[str, Any]]:
    """Every episode the state still holds (re-emitted when a duplicate may follow a crash)."""
    found = []
    for _, invoice in sorted(state.invoices.items()):
        for kind in KINDS:
            record = episode(invoice, kind, state.customer_id)
            if record is not None:
                found.append(record)
    return found
