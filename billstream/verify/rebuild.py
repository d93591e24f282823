"""A fresh application state from stripe.events: every record folded through the pure reducer.

The reducer uses event time only, so the same records in the same per-partition order give the
same states the worker holds; anything else is a bug, or lost or unprocessed input.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from billstream.processors.config import ReducerConfig
from billstream.processors.parsing import parse_event
from billstream.processors.reducer import apply
from billstream.tables.state import CustomerState


@dataclass
class Rebuild:
    """The per-customer states, keyed like the worker's table (the record key)."""

    config: ReducerConfig
    states: dict[str, CustomerState] = field(default_factory=dict)
    events: int = 0
    dead_lettered: int = 0  # what the worker sends to the DLQ is skipped here too

    def fold(self, key: bytes | None, raw: bytes | None) -> None:
        self.events += 1
        if not key or raw is None:
            self.dead_lettered += 1
            return
        customer = key.decode(errors="replace")
        try:
            state, _ = apply(self.states.get(customer), parse_event(raw), self.config)
        except Exception:  # InvalidEvent or a reducer error: the worker dead-letters both
            self.dead_lettered += 1
            return
        self.states[customer] = state

    def accounts(self) -> dict[str, dict[str, Any]]:
        """The account-state JSON per customer, as billing.account-state should hold it."""
        views = {}
        for customer, state in self.states.items():
            view = state.account_view()
            if view is not None:
                views[customer] = view
        return dict(sorted(views.items()))


class SourceRecord(Protocol):
    """What rebuilding reads of a `stripe.events` record (aiokafka's ConsumerRecord has it)."""

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


async def rebuild(records: AsyncIterable[SourceRecord], config: ReducerConfig) -> Rebuild:
    """Fold records in the order given (partition order; one customer is on one partition)."""
    result = Rebuild(config)
    async for record in records:
        result.fold(record.key, record.value)
    return result
