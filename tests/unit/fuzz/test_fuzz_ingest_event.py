"""Fuzz: ingest's event decoding rejects with InvalidPayload or routes as the worker will.

Ingest decodes only the routing fields (msgspec) and publishes the body unchanged; the worker
parses the whole body again (orjson) and recomputes the customer key. For any body both accept,
they must agree on id, type and key, or one customer's events would be split across partitions
and states. Bodies include duplicate keys, odd numbers, escapes and deep nesting.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from billstream.ingest.event import InvalidPayload, parse_event
from billstream.routing import event_key, routing_key
from tests.unit.fuzz.strategies import json_values

# Number spellings JSON allows that parsers disagree on (range, precision, exponent).
odd_numbers = st.sampled_from(
    ["1e400", "-0", "0.0", "1.0", "18446744073709551616", "-9223372036854775809", "1E2", "5e-324"]
)
ids = st.sampled_from(["cus_A", "cus_B", "", "in_1"]) | json_values


@st.composite
def json_text(draw: st.DrawFn, value: Any) -> str:
    """`value` as JSON text; objects sometimes repeat a key, numbers sometimes spelled oddly."""
    if isinstance(value, dict):
        pairs = list(value.items())
        if len(pairs) > 0 and draw(st.booleans()):
            key = draw(st.sampled_from([k for k, _ in pairs]))
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(ids)))
        return "{" + ",".join(f"{json.dumps(k)}:{draw(json_text(v))}" for k, v in pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(draw(json_text(v)) for v in value) + "]"
    if isinstance(value, int | float) and not isinstance(value, bool) and draw(st.booleans()):
        return draw(odd_numbers)
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Shaped like an event where routing looks, with arbitrary values there."""
    obj = draw(
        st.dictionaries(
            st.sampled_from(["id", "object", "customer", "customer_account", "email"]),
            ids,
            max_size=5,
        )
    )
    if draw(st.booleans()):
        obj["customer"] = {"id": draw(ids), "object": "customer"}  # expanded
    event_value = {
        "id": draw(st.one_of(*[st.sampled_from(["evt_1", "evt_2", ""])] * 3, json_values)),
        "type": draw(
            st.one_of(*[st.sampled_from(["invoice.paid", "customer.x"])] * 3, json_values)
        ),
        "data": {"object": obj},
    }
    if draw(st.booleans()):
        event_value["account"] = draw(ids)
    return event_value


shaped = envelopes().flatmap(json_text).map(str.encode)
bodies = st.one_of(
    shaped, shaped, shaped, json_values.flatmap(json_text).map(str.encode), st.binary(max_size=300)
)


@given(bodies)
def test_ingest_rejects_or_routes_like_the_worker(body: bytes) -> None:
    try:
        ingested = parse_event(body)
    except InvalidPayload as error:
        event(str(error)[:40])  # --hypothesis-show-statistics
        return
    ingested.headers(0)  # header values encode
    try:
        worker_view = orjson.loads(body)
    except orjson.JSONDecodeError:
        event("published; the worker dead-letters it (not_json)")
        return
    event("both accept")
    assert (worker_view["id"], worker_view["type"]) == (ingested.id, ingested.type)
    assert event_key(worker_view).encode() == ingested.key


@pytest.mark.parametrize("depth", [100, 2_000, 200_000])
@pytest.mark.parametrize("where", ["skipped field", "routed field", "top level"])
def test_deep_nesting_is_invalid_payload_not_a_crash(depth: int, where: str) -> None:
    nested = "[" * depth + "]" * depth
    bodies = {
        "skipped field": f'{{"id":"e","type":"t","data":{{"object":{{"x":{nested}}}}}}}',
        "routed field": f'{{"id":"e","type":"t","data":{{"object":{{"customer":{nested}}}}}}}',
        "top level": nested,
    }
    body = bodies[where].encode()
    if depth == 100 and where != "top level":
        assert parse_event(body).id == "e"  # ordinary nesting is fine
        return
    with pytest.raises(InvalidPayload):
        parse_event(body)


@pytest.mark.parametrize("object_id", ["18446744073709551616", '{"":18446744073709551616}', "7"])
def test_a_non_string_object_id_routes_by_event_id(object_id: str) -> None:
    """Found by `make fuzz`: a number's text differed between msgspec and orjson."""
    body = f'{{"id":"evt_1","type":"invoice.paid","data":{{"object":{{"id":{object_id}}}}}}}'
    assert parse_event(body.encode()).key == b"evt_1"
    assert routing_key(orjson.loads(body)) == "evt_1"
