"""The few fields of a verified body that routing needs; the body itself is published unchanged.

msgspec decodes into small typed structs and skips every other field without building it, about
2.5x faster than `orjson.loads` on 3-8 KB Stripe events (which builds the whole object tree).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from billstream.routing import account_key, headers_for, key_for

# Stripe types look like "invoice.payment_failed"; anything else is one label, not a new series.
_TYPE_LABEL = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+){0,5}")
_TYPE_LABEL_MAX = 64
OTHER_TYPE = "other"

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _Object(msgspec.Struct):
    """`data.object`: only what `routing_key` looks at (any JSON type, as routing tolerates)."""

    id: Any = None
    object: Any = None
    customer: Any = None
    customer_account: Any = None


class _Data(msgspec.Struct):
    object: _Object


class _Envelope(msgspec.Struct):
    id: NonEmpty
    type: NonEmpty
    data: _Data
    account: Any = None


_decode = msgspec.json.Decoder(_Envelope).decode


class InvalidPayload(Exception):
    """A verified body that is not a Stripe event; the message says why (safe to log)."""


@dataclass(slots=True)
class StripeEvent:
    """What the handler needs from an event: identity, type, Kafka key and the account."""

    id: str
    type: str
    key: bytes
    account: Any = None

    def headers(self, received_at_ms: int) -> list[tuple[str, bytes]]:
        """`billstream.routing.record_headers` of this event."""
        return headers_for(self.id, self.type, received_at_ms, self.account)


def parse_event(body: bytes, platform: str | None = None) -> StripeEvent:
    """Check the contract's shape (an object with id, type, data.object) and route it; a
    connected account's event is keyed `acct_…/cus_…` (`billstream.routing.account_key`)."""
    try:
        envelope = _decode(body)
    except msgspec.DecodeError as error:  # ValidationError included: wrong shape or types
        raise InvalidPayload(f"not a Stripe event: {error}") from None  # paths, never values
    except UnicodeDecodeError:
        raise InvalidPayload("not UTF-8") from None
    except RecursionError:  # msgspec recurses even into fields it skips
        raise InvalidPayload("not a Stripe event: nested too deeply") from None
    key = account_key(_key(envelope), envelope.account, platform)
    return StripeEvent(envelope.id, envelope.type, key.encode(), envelope.account)


def _key(envelope: _Envelope) -> str:
    """`billstream.routing.routing_key`, on the decoded structs instead of a dict."""
    obj = envelope.data.object
    return key_for(
        envelope.id, envelope.type, obj.object, obj.id, obj.customer, obj.customer_account
    )


def type_label(event_type: str) -> str:
    """A bounded metric label: well-formed Stripe type names only, everything else `other`."""
    if len(event_type) <= _TYPE_LABEL_MAX and _TYPE_LABEL.fullmatch(event_type):
        return event_type
    return OTHER_TYPE
