"""Bearer-token authentication of the read API: every route but the probes needs a token.

The API serves every customer's billing state, so an open API must be a decision
(`API_AUTH=none`), never what a missing setting falls back to. Tokens are compared in
constant time against every configured token, so neither timing nor which one matched tells
a caller anything; listing old and new in `API_TOKENS` rotates them without downtime.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from billstream.api.scopes import SCOPE, Scope, parse_entry
from billstream.settings import Settings

# Open whatever the settings: a prober or load balancer never holds a token, and the document
# describes the API without serving any data.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="billstream"'}


class AuthNotConfigured(ValueError):
    """`API_AUTH=token` (the default) without any `API_TOKENS`."""


class Unauthorized(Exception):
    """No token, or not one of `API_TOKENS`: 401 with a Bearer challenge."""


class Forbidden(Exception):
    """A scoped token on a route that spans accounts (funnels, billing actions): 403."""


# Routes over every account, or acting on Stripe as the platform: unscoped tokens only.
UNSCOPED_PREFIXES = ("/funnels/", "/billing/")


def configuration_error(settings: Settings) -> str | None:
    """The one-line reason the api must not start with these settings, or None."""
    if settings.api_auth == "token" and not settings.api_tokens:
        return "API_TOKENS: required for the api (or set API_AUTH=none for an open API)"
    return None


def token_matches(header: str | None, tokens: tuple[bytes, ...]) -> bool:
    """Whether `Authorization: Bearer <token>` names one of `tokens`, in constant time."""
    return token_scope(header, tuple((token, Scope()) for token in tokens)) is not None


def token_scope(header: str | None, tokens: tuple[tuple[bytes, Scope], ...]) -> Scope | None:
    """The scope of the token `Authorization: Bearer <token>` names, or None; constant time."""
    scheme, _, presented = (header or "").partition(" ")
    candidate = presented.strip().encode()
    found: Scope | None = None
    for token, scope in tokens:  # every token is compared: the time says nothing about which
        if hmac.compare_digest(candidate, token):
            found = scope
    return found if scheme.lower() == "bearer" else None


def open_paths(settings: Settings) -> frozenset[str]:
    return OPEN_PATHS if settings.api_metrics_auth else OPEN_PATHS | {"/metrics"}


def auth_middleware(settings: Settings) -> Middleware | None:
    """The middleware requiring a token, or None for `API_AUTH=none`; raises without tokens."""
    error = configuration_error(settings)
    if error is not None:
        raise AuthNotConfigured(error)
    if settings.api_auth == "none":
        return None
    platform = settings.stripe_account_id
    entries = (parse_entry(entry, platform) for entry in settings.api_token_values())
    tokens = tuple((token.encode(), scope) for token, scope in entries)
    unguarded = open_paths(settings)

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in unguarded:
            return await handler(request)
        scope = token_scope(request.headers.get("Authorization"), tokens)
        if scope is None:
            raise Unauthorized()
        if not scope.unlimited and request.path.startswith(UNSCOPED_PREFIXES):
            raise Forbidden()
        request[SCOPE] = scope
        return await handler(request)

    return require_token
