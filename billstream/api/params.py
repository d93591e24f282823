"""Validation of path and query values: any bad value is a 400 naming the parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from multidict import MultiMapping

from billstream.api import cursor
from billstream.api.cohorts import BREAKDOWNS, PERIODS, CohortQuery
from billstream.api.state import PAYMENT_STATES
from billstream.limits import FEATURE_KEY_MAX_CHARS, INT64_MAX

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
    feature: str | None = None


@dataclass(frozen=True)
class TransitionQuery:
    """A page of one account's transitions: event time in [since, until), versions > after."""

    limit: int = DEFAULT_LIMIT
    after: int | None = None
    since: int | None = None
    until: int | None = None


def text_value(name: str, value: str, longest: int = MAX_TEXT) -> str:
    """A plain identifier-like value: 1-`longest` characters, no control characters, UTF-8."""
    if not 1 <= len(value) <= longest or _CONTROL.search(value):
        raise BadParameter(name, f"{name} must be 1 to {longest} characters, none a control one")
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


def _limit(query: MultiMapping[str]) -> int:
    raw_limit = _single(query, "limit")
    if raw_limit is None:
        return DEFAULT_LIMIT
    if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 4):
        raise BadParameter("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    limit = int(raw_limit)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadParameter("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def timestamp_value(name: str, value: str) -> int:
    """Event time as unix seconds: given as an integer of seconds or an RFC 3339 date-time
    with its offset (a time without one would depend on the server's zone)."""
    message = f"{name} must be unix seconds or an RFC 3339 date-time with an offset"
    if value.isascii() and value.isdigit():
        if len(value) > 19 or int(value) > INT64_MAX:
            raise BadParameter(name, message)
        return int(value)
    if not value.isascii() or len(value) > 40 or "T" not in value.upper():
        raise BadParameter(name, message)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(name, message) from None
    if moment.tzinfo is None:
        raise BadParameter(name, message)
    return int(moment.timestamp())  # fractions of a second are dropped: Stripe's are whole


def optional_timestamp(query: MultiMapping[str], name: str) -> int | None:
    raw = _single(query, name)
    return None if raw is None else timestamp_value(name, raw)


def transition_query(query: MultiMapping[str]) -> TransitionQuery:
    """The window and page of GET /accounts/{id}/transitions; unknown parameters are ignored."""
    after = _single(query, "after")
    version = None
    if after is not None:
        try:
            version = cursor.decode_version(after)
        except cursor.InvalidCursor as error:
            raise BadParameter("after", f"after is {error}") from None
    since, until = optional_timestamp(query, "since"), optional_timestamp(query, "until")
    if since is not None and until is not None and until < since:
        raise BadParameter("until", "until must not be before since")
    return TransitionQuery(limit=_limit(query), after=version, since=since, until=until)


def list_query(query: MultiMapping[str]) -> ListQuery:
    """The filters and page of GET /accounts; unknown parameters are ignored."""
    limit = _limit(query)
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
    feature = _single(query, "feature")
    if feature is not None:
        feature = text_value("feature", feature, FEATURE_KEY_MAX_CHARS)  # a lookup key's limit
    return ListQuery(
        limit=limit, after=after, plan=plan, payment_state=payment_state, feature=feature
    )


def cohort_query(kind: str, query: MultiMapping[str]) -> CohortQuery:
    """The window (`from` included, `to` excluded), period and breakdown of GET /funnels/*."""
    since, until = optional_timestamp(query, "from"), optional_timestamp(query, "to")
    if since is not None and until is not None and until < since:
        raise BadParameter("to", "to must not be before from")
    period = _single(query, "cohort") or "month"
    if period not in PERIODS:
        raise BadParameter("cohort", f"cohort must be one of {', '.join(PERIODS)}")
    breakdown = _single(query, "breakdown")
    if breakdown is not None and breakdown not in BREAKDOWNS:
        raise BadParameter("breakdown", f"breakdown must be one of {', '.join(BREAKDOWNS)}")
    return CohortQuery(kind, period, since, until, breakdown)
