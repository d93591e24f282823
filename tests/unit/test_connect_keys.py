"""Connect keys: platform keys and stored values exactly as before Connect, connected ones
`acct_…/cus_…`, and the worker's state naming its account (docs/DESIGN.md, "Stripe accounts")."""

from __future__ import annotations

import orjson
import pytest

from billstream.processors.config import ReducerConfig
from billstream.processors.reducer import apply
from billstream.routing import account_key, event_key, split_account_key
from billstream.tables.codec import decode_customer, encode_customer
from billstream.tables.state import AccountState, CustomerState
from tests.support.factories import PLAN_MAP, pro_monthly, subscription_event

CONFIG = ReducerConfig(plan_map=PLAN_MAP, platform_account="acct_platform")


def _event(account: str | None) -> dict[str, object]:
    event = subscription_event(
        "customer.subscription.created", created=1_767_225_600, prices=[pro_monthly()]
    )
    return event if account is None else {**event, "account": account}


@pytest.mark.parametrize(
    ("account", "key"),
    [
        (None, "cus_test1"),  # the platform, as before Connect
        ("acct_platform", "cus_test1"),  # STRIPE_ACCOUNT_ID is the platform too
        ("acct_1", "acct_1/cus_test1"),
        ("", "cus_test1"),
        ("cus_other", "cus_test1"),  # not an account id: could not be told from a customer
        (7, "cus_test1"),
    ],
)
def test_event_keys(account: object, key: str) -> None:
    event = {**_event(None), "account": account}
    assert event_key(event, "acct_platform") == key
    connected, customer = split_account_key(key)
    assert customer == "cus_test1"
    assert account_key(customer, connected) == key


def test_a_state_stored_before_connect_decodes_and_encodes_unchanged() -> None:
    """A table value as the pre-Connect worker wrote it (no `stripe_account`)."""
    old = CustomerState("cus_1", AccountState(plan="PRO"), seen={"evt_1": 1}, newest_created=1)
    stored = encode_customer(old)
    assert b"stripe_account" not in stored
    decoded = decode_customer(stored)
    assert decoded is not None
    assert decoded.stripe_account is None
    assert encode_customer(decoded) == stored  # byte for byte: no re-keying, no rewrite
    assert decoded.account_view() == old.account_view()
    assert "stripe_account" not in (decoded.account_view() or {})


def test_a_connected_accounts_state_names_it_in_value_and_view() -> None:
    state, _ = apply(None, _event("acct_1"), CONFIG)
    assert state.stripe_account == "acct_1"
    assert state.customer_id == "cus_test1"  # the customer id itself, not the key
    stored = encode_customer(state)
    assert orjson.loads(stored) == state.to_dict()
    decoded = decode_customer(stored)
    assert decoded is not None
    assert decoded.stripe_account == "acct_1"
    view = state.account_view()
    assert view is not None
    assert (view["customer_id"], view["stripe_account"], view["plan"]) == (
        "cus_test1",
        "acct_1",
        "PRO",
    )


def test_the_platforms_own_id_folds_as_the_platform() -> None:
    state, _ = apply(None, _event("acct_platform"), CONFIG)
    assert state.stripe_account is None
    assert "stripe_account" not in state.to_dict()
    assert "stripe_account" not in (state.account_view() or {})
