"""Shared test helpers: the reducer config matching the factories' catalogue, and folding."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from billstream.processors.effects import Effect
from billstream.processors.reducer import ReducerConfig, apply
from billstream.tables.state import CustomerState
from tests.support.factories import PLAN_MAP

CONFIG = ReducerConfig(
    plan_map=PLAN_MAP,
    default_plan="FREE",
    plan_order=("FREE", "PRO", "BUSINESS"),
    dedup_retention_seconds=7 * 86400,
)

E = TypeVar("E", bound=Effect)


def fold(
    events: Iterable[dict[str, Any]],
    state: CustomerState | None = None,
    config: ReducerConfig = CONFIG,
) -> tuple[CustomerState, list[Effect]]:
    """Apply events in the given order; the final state and every effect, in order."""
    effects: list[Effect] = []
    for event in events:
        state, caused = apply(state, event, config)
        effects.extend(caused)
    assert state is not None, "fold needs at least one event"
    return state, effects


def of_type(effects: Iterable[Effect], kind: type[E]) -> list[E]:
    return [e for e in effects if isinstance(e, kind)]


def view(state: CustomerState) -> dict[str, Any]:
    account = state.account_view()
    assert account is not None
    return account
