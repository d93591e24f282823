"""What the pipeline's state should be: the queued events folded through the pure reducer in the
order Kafka holds them (per customer: acknowledgement order), exactly as the worker folds them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from billstream.processors.reducer import CustomerState, InvalidEvent, ReducerConfig, apply
from billstream.routing import event_key
from billstream.settings import Settings
from billstream.simulate.traffic import Outcome


@dataclass
class ExpectedState:
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invalid_events: int = 0  # the worker would dead-letter these

    def count(self, name: str) -> dict[str, int]:
        """How many accounts have each value of `name` (e.g. plan, payment_state)."""
        return dict(sorted(Counter(str(a.get(name)) for a in self.accounts.values()).items()))


def fold(outcomes: Iterable[Outcome], settings: Settings) -> ExpectedState:
    """Duplicates are left to the reducer, which skips ids it has seen like the worker does."""
    config = ReducerConfig.from_settings(settings)
    states: dict[str, CustomerState] = {}
    expected = ExpectedState()
    for outcome in outcomes:
        if outcome.status != "queued":
            continue
        event = orjson.loads(outcome.delivery.event_body)
        key = event_key(event, config.platform_account)  # acct_…/cus_… for Connect
        try:
            states[key], _ = apply(states.get(key), event, config)
        except InvalidEvent:
            expected.invalid_events += 1
    for key, state in states.items():
        view = state.account_view()
        if view is not None:
            expected.accounts[key] = view
    return expected
