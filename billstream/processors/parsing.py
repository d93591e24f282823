"""Raw record bytes → event mapping, and the typed field readers the rules validate with.

A malformed event raises `InvalidEvent(reason)`; `reason` is a short, bounded label the worker
uses for the DLQ header and `billstream_dlq_total{reason}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from billstream.limits import (
    ID_MAX_CHARS,
    INT64_MAX,
    INT64_MIN,
    OUT_OF_RANGE,
    TEXT_MAX_CHARS,
    TOO_LONG,
)


class InvalidEvent(ValueError):
    """The event cannot be applied; `reason` is one of a few fixed labels."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def parse_event(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, or InvalidEvent `not_json` / `not_object`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidEvent("not_json") from None
    if not isinstance(value, dict):
        raise InvalidEvent("not_object")
    return value


class Envelope(NamedTuple):
    """The validated parts of a Stripe event every rule needs (a tuple: cheap to build)."""

    id: str
    type: str
    created: int
    obj: Mapping[str, Any]
    # The whole event, for the few rules that read beside `data.object` (processors/ordering.py:
    # `data.previous_attributes`, the top-level `billstream_source` of a refetch answer).
    raw: Mapping[str, Any] | None = None


def read_envelope(event: object) -> Envelope:
    """Validate the event's envelope: `id`, `type`, `created`, `data.object`, within limits."""
    # Fast path for what parse_event returns: plain dicts, every field well-typed and within the
    # contract's limits. Anything else takes the checks below, which raise the reason for the
    # first field that fails.
    if type(event) is dict:
        event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
        data = event.get("data")
        obj = data.get("object") if type(data) is dict else None
        if (
            type(event_id) is str
            and 0 < len(event_id) <= ID_MAX_CHARS
            and type(event_type) is str
            and 0 < len(event_type) <= TEXT_MAX_CHARS
            and type(created) is int
            and INT64_MIN <= created <= INT64_MAX
            and type(obj) is dict
        ):
            return Envelope(event_id, event_type, created, obj, event)
    return _checked_envelope(event)


def _checked_envelope(event: object) -> Envelope:
    if not isinstance(event, Mapping):
        raise InvalidEvent("not_object")
    data = req_mapping(event, "data")
    envelope = Envelope(
        id=req_str(event, "id"),
        type=req_str(event, "type"),
        created=req_int(event, "created"),
        obj=req_mapping(data, "object"),
        raw=event,
    )
    if len(envelope.id) > ID_MAX_CHARS:
        raise InvalidEvent(TOO_LONG, "id")
    if len(envelope.type) > TEXT_MAX_CHARS:
        raise InvalidEvent(TOO_LONG, "type")
    if not INT64_MIN <= envelope.created <= INT64_MAX:
        raise InvalidEvent(OUT_OF_RANGE, "created")
    return envelope


def _get(obj: Mapping[str, Any], key: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise InvalidEvent("missing_field", key)
    return value


def req_str(obj: Mapping[str, Any], key: str) -> str:
    value = _get(obj, key)
    if not isinstance(value, str):
        raise InvalidEvent("bad_type", key)
    if not value:
        raise InvalidEvent("missing_field", key)
    return value


def req_int(obj: Mapping[str, Any], key: str) -> int:
    value = _get(obj, key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidEvent("bad_type", key)


def req_mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(obj, key)
    if type(value) is not dict and not isinstance(value, Mapping):
        raise InvalidEvent("bad_type", key)
    return value


def opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    """A string field; absent, null or empty reads as None."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent("bad_type", key)
    return value or None


def opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidEvent("bad_type", key)


def opt_bool(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidEvent("bad_type", key)
    return value


def opt_mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested object; absent or null reads as empty."""
    value = obj.get(key)
    if value is None:
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):
        raise InvalidEvent("bad_type", key)
    return value


def opt_list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidEvent("bad_type", key)
    return value


def opt_id(obj: Mapping[str, Any], key: str) -> str | None:
    """An id field that Stripe may expand into an object carrying `id`."""
    value = obj.get(key)
    if type(value) is str:
        return value or None
    if isinstance(value, Mapping):
        return opt_str(value, "id")
    return opt_str(obj, key)
