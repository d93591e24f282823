"""One record through the reducer: previous table value + raw bytes → new value and output.

Synchronous and free of Faust, so the agent stays a thin loop and this core is unit-tested
directly. Table values and the published account state are orjson bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.parsing import parse_event
from billstream.processors.reducer import apply
from billstream.tables.tables import decode_customer, encode_customer


@dataclass(frozen=True, slots=True)
class Applied:
    """What the agent must do for one record."""

    value: bytes | None  # table value to write; None for a duplicate of a customer never stored
    output: bytes | None  # account-state JSON to publish; None when there is nothing to publish
    effects: list[fx.Effect]


def apply_record(previous: bytes | None, raw: bytes, config: ReducerConfig) -> Applied:
    """Parse and fold one record; raises InvalidEvent for poison input."""
    event = parse_event(raw)
    state = decode_customer(previous)
    new, effects = apply(state, event, config)
    if new is state:
        # A duplicate (Stripe retry, or a replay after a crash). The crash may have come after
        # the local write but before the changelog record or the output was sent: write the
        # unchanged value again (re-sends the changelog record, which a durable store may be
        # ahead of) and re-emit the current view (downstream keeps the highest `version`).
        view = state.account_view() if state is not None else None
        return Applied(previous, None if view is None else orjson.dumps(view), effects)
    output = None
    for effect in effects:
        if isinstance(effect, fx.AccountChanged):
            output = orjson.dumps(effect.account)
    return Applied(encode_customer(new), output, effects)
