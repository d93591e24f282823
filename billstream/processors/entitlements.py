"""`entitlements.active_entitlement_summary.updated`: the account's `features`.

The event's summary lists at most ten entitlements (`entitlements` is a list object with
`has_more`). Such a page is applied as it is, marked incomplete, and an `EntitlementsIncomplete`
effect asks for the rest; the whole list comes back as a synthetic summary of the same `created`
with `has_more: false` (billstream/entitlements/fetch.py), which supersedes it (docs/state.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.parsing import (
    Envelope,
    InvalidEvent,
    opt_bool,
    opt_list,
    req_mapping,
    req_str,
)
from billstream.tables.state import CustomerState, EntitlementsState

SUMMARY_UPDATED = "entitlements.active_entitlement_summary.updated"
RULE_TYPES = (SUMMARY_UPDATED,)


def read_summary(obj: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    """Sorted distinct lookup keys of the summary's entitlements, and whether that is all."""
    entitlements = req_mapping(obj, "entitlements")
    keys = set()
    for item in opt_list(entitlements, "data"):
        if not isinstance(item, Mapping):
            raise InvalidEvent("bad_type", "entitlements.data[]")
        keys.add(req_str(item, "lookup_key"))
    return tuple(sorted(keys)), not opt_bool(entitlements, "has_more")


def supersedes(current: EntitlementsState | None, created: int, complete: bool) -> bool:
    """Newer wins; at the same `created` a complete list beats a partial one, and otherwise the
    later delivered wins (Stripe's timestamps have 1-second granularity); older never wins."""
    if current is None or created > current.created:
        return True
    if created < current.created:
        return False
    return complete or not current.complete


def apply_entitlements_event(
    state: CustomerState, event: Envelope, config: ReducerConfig, out: list[fx.Effect]
) -> None:
    req_str(event.obj, "customer")
    features, complete = read_summary(event.obj)
    if not supersedes(state.entitlements, event.created, complete):
        return
    state.entitlements = EntitlementsState(features, event.created, complete)
    if not complete:
        out.append(fx.EntitlementsIncomplete(state.customer_id, event.created))


def pending_fetch(state: CustomerState, event: Envelope) -> fx.EntitlementsIncomplete | None:
    """For a redelivered incomplete summary: ask again, in case the first request was lost
    (a crash after the table write, before the request was sent); a repeat is harmless, the
    request and its answer have ids derived from the summary."""
    current = state.entitlements
    if (
        event.type == SUMMARY_UPDATED
        and current is not None
        and not current.complete
        and current.created == event.created
    ):
        return fx.EntitlementsIncomplete(state.customer_id, event.created)
    return None


def features(state: CustomerState) -> tuple[str, ...]:
    """What the account shows: none for a deleted customer, as it falls to the default plan."""
    if state.entitlements is None or state.deleted:
        return ()
    return state.entitlements.features
