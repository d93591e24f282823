"""Raw bytes → event, and the typed field readers."""

from __future__ import annotations

import orjson
import pytest

from billstream.processors.parsing import (
    InvalidEvent,
    opt_bool,
    opt_id,
    opt_int,
    opt_list,
    opt_str,
    parse_event,
)
from tests.support.factories import invoice_event


def test_parse_event_returns_the_object() -> None:
    event = invoice_event("invoice.paid", created=100)

    assert parse_event(orjson.dumps(event)) == event


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"{'id': 1}"])
def test_parse_event_rejects_non_json(raw: bytes) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_event(raw)

    assert raised.value.reason == "not_json"


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"evt"', b"null"])
def test_parse_event_rejects_json_that_is_not_an_object(raw: bytes) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_event(raw)

    assert raised.value.reason == "not_object"


def test_invalid_event_message_names_the_field() -> None:
    error = InvalidEvent("bad_type", "created")

    assert (str(error), error.reason, error.detail) == ("bad_type: created", "bad_type", "created")
    assert str(InvalidEvent("not_json")) == "not_json"


def test_optional_readers_treat_absent_and_null_alike() -> None:
    obj = {"s": None, "i": None, "b": None, "l": None, "e": ""}

    assert [opt_str(obj, "s"), opt_str(obj, "e"), opt_str(obj, "x")] == [None, None, None]
    assert [opt_int(obj, "i"), opt_bool(obj, "b"), opt_list(obj, "l")] == [None, False, []]
    assert opt_id({"sub": {"id": "sub_1"}}, "sub") == "sub_1"
    assert opt_id({"sub": "sub_2"}, "sub") == "sub_2"


@pytest.mark.parametrize(
    ("reader", "value"),
    [(opt_str, 1), (opt_int, "1"), (opt_int, False), (opt_bool, 0), (opt_list, {})],
)
def test_optional_readers_reject_wrong_types(reader: object, value: object) -> None:
    with pytest.raises(InvalidEvent) as raised:
        reader({"k": value}, "k")  # type: ignore[operator]

    assert raised.value.reason == "bad_type"
