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
from billstream.tables.state import CustomerState
from billstream.tables.tables import decode_state, encode_state


@dataclass(frozen=True, slots=True)
class Applied:
    """What the agent must do for one record."""

    value: bytes | None  # new table value; None when the table is unchanged (a duplicate)
    output: bytes | None  # account-state JSON to publish; None when there is nothing to publish
    effects: list[fx.Effect]


def load_state(value: bytes | None) -> CustomerState | None:
    """The aggregate stored in the table, or None for a customer never seen."""
    data = decode_state(value)
    return None if data is None else CustomerState.from_dict(data)


def apply_record(previous: bytes | None, raw: bytes, config: ReducerConfig) -> Applied:
    """Parse and fold one record; raises InvalidEvent for poison input."""
    event = parse_event(raw)
    state = load_state(previous)
    new, effects = apply(state, event, config)
    if new is state:
        # Duplicate: re-emit the current view, in case the crash that caused the replay came
        # after the table write but before the output was sent (downstream keeps the highest
        # `version`, so an extra copy is harmless).
        view = state.account_view() if state is not None else None
        return Applied(None, None if view is None else orjson.dumps(view), effects)
    output = None
    for effect in effects:
        if isinstance(effect, fx.AccountChanged):
            output = orjson.dumps(effect.account)
    return Applied(encode_state(new.to_dict()), output, effects)
