"""Validation of path and query values: any bad value is a 400 naming the parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass

from multidict import MultiMapping

from billstream.api import cursor
from billstream.api.state import PAYMENT_STATES

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_TEXT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadParameter(ValueError):
    """A 400: `parameter` is the name the client used."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class ListQuery:
    limit: int = DEFAULT_LIMIT
    after: str | None = None
    plan: str | None = None
    payment_state: str | None = None


def text_value(name: str, value: str) -> str:
    """A plain identifier-like value: 1-255 characters, no control characters, valid UTF-8."""
    if not 1 <= len(value) <= MAX_TEXT or _CONTROL.search(value):
        raise BadParameter(name, f"{name} must be 1 to {MAX_TEXT} characters, none a control one")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise BadParameter(name, f"{name} is not valid UTF-8") from None
    return value


def _single(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(name, f"{name} is given more than once")
    return values[0] if values else None


def list_query(query: MultiMapping[str]) -> ListQuery:
    """The filters and page of GET /accounts; unknown parameters are ignored."""
    limit = DEFAULT_LIMIT
    raw_limit = _single(query, "limit")
    if raw_limit is not None:
        if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 4):
            raise BadParameter("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
        if not 1 <= limit <= MAX_LIMIT:
            raise BadParameter("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    after = _single(query, "after")
    if after is not None:
        try:
            after = cursor.decode(after)
        except cursor.InvalidCursor as error:
            raise BadParameter("after", f"after is {error}") from None
    plan = _single(query, "plan")
    if plan is not None:
        plan = text_value("plan", plan)
    payment_state = _single(query, "payment_state")
    if payment_state is not None and payment_state not in PAYMENT_STATES:
        raise BadParameter(
            "payment_state", f"payment_state must be one of {', '.join(PAYMENT_STATES)}"
        )
    return ListQuery(limit=limit, after=after, plan=plan, payment_state=payment_state)
