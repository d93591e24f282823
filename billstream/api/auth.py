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

from billstream.settings import Settings

# Open whatever the settings: a prober or load balancer never holds a token, and the document
# describes the API without serving any data.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="billstream"'}


class AuthNotConfigured(ValueError):
    """`API_AUTH=token` (the default) without any `API_TOKENS`."""


class Unauthorized(Exception):
    """No token, or not one of `API_TOKENS`: 401 with a Bearer challenge."""


def configuration_error(settings: Settings) -> str | None:
    """The one-line reason the api must not start with these settings, or None."""
    if settings.api_auth == "token" and not settings.api_tokens:
        return "API_TOKENS: required for the api (or set API_AUTH=none for an open API)"
    return None


def token_matches(header: str | None, tokens: tuple[bytes, ...]) -> bool:
    """Whether `Authorization: Bearer <token>` names one of `tokens`, in constant time."""
    scheme, _, presented = (header or "").partition(" ")
    candidate = presented.strip().encode()
    matched = False
    for token in tokens:  # every token is compared: the time taken says nothing about which
        matched |= hmac.compare_digest(candidate, token)
    return matched and scheme.lower() == "bearer"


def open_paths(settings: Settings) -> frozenset[str]:
    return OPEN_PATHS if settings.api_metrics_auth else OPEN_PATHS | {"/metrics"}


def auth_middleware(settings: Settings) -> Middleware | None:
    """The middleware requiring a token, or None for `API_AUTH=none`; raises without tokens."""
    error = configuration_error(settings)
    if error is not None:
        raise AuthNotConfigured(error)
    if settings.api_auth == "none":
        return None
    tokens = tuple(token.encode() for token in settings.api_token_values())
    unguarded = open_paths(settings)

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in unguarded or token_matches(request.headers.get("Authorization"), tokens):
            return await handler(request)
        raise Unauthorized()

    return require_token
