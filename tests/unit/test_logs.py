"""Log lines: JSON with service and event/customer context, no payloads, no secrets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from billstream.logs import JsonFormatter, TextFormatter, log_context

SECRET = "whsec_0123456789abcdefABCDEF"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("worker"))
    logger = logging.getLogger("billstream.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield buffer
    logger.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_line_carries_service_and_call_context(stream: io.StringIO) -> None:
    log = logging.getLogger("billstream.test_logs")
    log.warning(
        "dead-lettered: %s",
        "not_json",
        extra={"event_id": "evt_1", "customer_id": "cus_1", "reason": "not_json", "body": "{}"},
    )
    [line] = lines(stream)
    assert line["msg"] == "dead-lettered: not_json"
    assert line["level"] == "warning"
    assert line["service"] == "worker"
    assert (line["event_id"], line["customer_id"], line["reason"]) == ("evt_1", "cus_1", "not_json")
    assert "body" not in line  # only the whitelisted context fields, never a payload


async def test_context_block_applies_to_every_line_and_to_started_tasks(
    stream: io.StringIO,
) -> None:
    log = logging.getLogger("billstream.test_logs")
    with log_context(event_id="evt_2", customer_id="cus_2", payload={"card": "4242"}):
        log.info("applied")
        await asyncio.create_task(_log_later(log))
        log.info("override", extra={"event_id": "evt_3"})
    log.info("outside")
    applied, later, override, outside = lines(stream)
    assert (applied["event_id"], applied["customer_id"]) == ("evt_2", "cus_2")
    assert later["customer_id"] == "cus_2"
    assert override["event_id"] == "evt_3"
    assert "payload" not in applied
    assert "event_id" not in outside


async def _log_later(log: logging.Logger) -> None:
    await asyncio.sleep(0)
    log.info("in a task")


def test_secrets_are_masked_in_messages_and_tracebacks(stream: io.StringIO) -> None:
    log = logging.getLogger("billstream.test_logs")
    try:
        raise ValueError(f"bad secret {SECRET}")
    except ValueError:
        log.exception("verify failed with %s and sk_live_abc123", SECRET)
    text = stream.getvalue()
    assert SECRET not in text
    assert "sk_live_abc123" not in text
    [line] = lines(stream)
    assert line["msg"] == "verify failed with whsec_*** and sk_live_***"
    assert "whsec_***" in str(line["exc"])


def test_text_format_masks_secrets_too() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "secret %s", (SECRET,), None)
    assert TextFormatter("%(message)s").format(record) == "secret whsec_***"
