"""Which Stripe accounts a bearer token may read (`API_TOKENS=token@acct_1|platform`).

A Connect platform serves several tenants from one api; a tenant's service gets a token
scoped to its connected account, so it cannot read another tenant's customers. Outside its
scope an account is answered 404, exactly as one that does not exist: a scoped token learns
nothing about other tenants. A token without `@` reads every account (as before Connect).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

PLATFORM = "platform"  # the platform's own customers, in a scope (or STRIPE_ACCOUNT_ID)


@dataclass(frozen=True, slots=True)
class Scope:
    """The accounts a token reads; `accounts` None: all. None in `accounts`: the platform."""

    accounts: frozenset[str | None] | None = None

    @property
    def unlimited(self) -> bool:
        return self.accounts is None

    def allows(self, stripe_account: str | None) -> bool:
        return self.accounts is None or stripe_account in self.accounts


ALL = Scope()
SCOPE = web.RequestKey("scope", Scope)


def parse_entry(entry: str, platform: str | None = None) -> tuple[str, Scope]:
    """(token, scope) of one `API_TOKENS` entry (settings validated its syntax)."""
    token, at, names = entry.partition("@")
    if not at:
        return token, ALL
    accounts = frozenset(None if n in (PLATFORM, platform) else n for n in names.split("|"))
    return token, Scope(accounts)


def request_scope(request: web.Request) -> Scope:
    """The scope of the request's token (ALL with API_AUTH=none)."""
    scope = request.get(SCOPE)
    return scope if isinstance(scope, Scope) else ALL
