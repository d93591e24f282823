"""Scoped API tokens: `token@acct_1|platform` (docs/DESIGN.md, "Stripe accounts")."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from billstream.api.auth import token_scope
from billstream.api.scopes import ALL, Scope, parse_entry
from billstream.settings import Settings

TOKEN = "a-long-enough-token-0123"


def test_an_entry_without_scope_reads_every_account() -> None:
    assert parse_entry(TOKEN) == (TOKEN, ALL)
    assert ALL.allows(None)
    assert ALL.allows("acct_9")


def test_a_scope_lists_accounts_and_the_platform() -> None:
    token, scope = parse_entry(f"{TOKEN}@acct_1|platform")
    assert token == TOKEN
    assert scope.allows("acct_1")
    assert scope.allows(None)
    assert not scope.allows("acct_2")


def test_the_platforms_id_in_a_scope_is_the_platform() -> None:
    _, scope = parse_entry(f"{TOKEN}@acct_platform", platform="acct_platform")
    assert scope.allows(None)
    assert not scope.allows("acct_1")


def test_the_presented_token_selects_its_scope_and_a_wrong_one_none() -> None:
    one = Scope(frozenset({"acct_1"}))
    tokens = ((b"token-one-0123456789", one), (b"token-all-0123456789", ALL))
    assert token_scope("Bearer token-one-0123456789", tokens) is one
    assert token_scope("Bearer token-all-0123456789", tokens) is ALL
    assert token_scope("Bearer token-one-0123456789x", tokens) is None
    assert token_scope("Basic token-one-0123456789", tokens) is None
    assert token_scope(None, tokens) is None


@pytest.mark.parametrize(
    "entry",
    [f"{TOKEN}@", f"{TOKEN}@cus_1", f"{TOKEN}@acct_1|", f"{TOKEN}@acct_1,x", "short@acct_1"],
)
def test_malformed_scopes_stop_the_settings(entry: str) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, api_tokens=entry)


def test_a_scoped_entry_is_accepted() -> None:
    settings = Settings(_env_file=None, api_tokens=f"{TOKEN}@acct_1|acct_2,{TOKEN}x")
    assert settings.api_token_values() == (f"{TOKEN}@acct_1|acct_2", f"{TOKEN}x")
