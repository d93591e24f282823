"""The hot-path record helpers keep dataclass semantics: frozen, defaults, equality, order."""

from __future__ import annotations

import dataclasses

import pytest

from billstream.tables.state import AccountState, InvoiceState, SubscriptionState, evolve, fast_init


def test_fast_init_builds_the_same_record_as_the_generated_init() -> None:
    fast = InvoiceState("in_1", "sub_1", dunning_since=5)
    assert list(vars(fast)) == [f.name for f in dataclasses.fields(InvoiceState)]
    assert fast == InvoiceState(id="in_1", subscription_id="sub_1", dunning_since=5)
    assert fast.sca_since is None
    assert fast.outcome is None
    assert hash(fast) == hash(InvoiceState("in_1", "sub_1", dunning_since=5))
    assert dataclasses.asdict(fast) == vars(fast)


def test_fast_init_records_stay_frozen() -> None:
    account = AccountState("PRO", version=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        account.plan = "FREE"  # type: ignore[misc]


def test_fast_init_rejects_missing_and_unknown_arguments() -> None:
    with pytest.raises(TypeError):
        InvoiceState()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        InvoiceState("in_1", nonsense=1)  # type: ignore[call-arg]


def test_fast_init_refuses_fields_it_cannot_fill() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="not a plain field"):
        fast_init(WithFactory)


def test_evolve_changes_only_the_named_fields() -> None:
    sub = SubscriptionState(id="sub_1", status="active", plan="PRO", last_event_created=1)
    moved = evolve(sub, status="past_due")
    assert moved == dataclasses.replace(sub, status="past_due")
    assert sub.status == "active"
