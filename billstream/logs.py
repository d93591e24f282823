"""Process-wide logging: plain text for people, JSON lines for log pipelines (LOG_FORMAT).

Lines carry context (event id, customer id, ...) but never a payload or a secret: only the
CONTEXT_FIELDS are emitted, and anything shaped like a Stripe secret is masked.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from billstream.settings import Settings

# Extra attributes a call may attach (logger.info(..., extra={...})) that are safe to emit.
CONTEXT_FIELDS = ("event_id", "event_type", "customer_id", "reason", "topic", "partition", "offset")

# Webhook signing secrets and API keys, should one ever reach a message or a traceback.
SECRET_PATTERN = re.compile(r"\b(whsec|sk_live|sk_test|rk_live|rk_test)_[A-Za-z0-9_]+")

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach context fields to every line logged inside the block (and tasks it starts)."""
    known = {name: value for name, value in fields.items() if name in CONTEXT_FIELDS}
    token = _context.set({**_context.get({}), **known})
    try:
        yield
    finally:
        _context.reset(token)


def redact(text: str) -> str:
    return SECRET_PATTERN.sub(lambda match: f"{match.group(1)}_***", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if self.service:
            entry["service"] = self.service
        context = _context.get({})
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = context.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a malformed HTTP request at ERROR with a traceback quoting the request's
    bytes (a payload, a signature): the client's fault, so one DEBUG line naming the error.
    A body that cannot be decoded (broken gzip) is logged so too, after the handler answered
    400 `invalid_payload`, when aiohttp drains the rest of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError | RequestPayloadError):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args = "refused a malformed HTTP request (%s)", (type(error).__name__,)
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(settings: Settings, service: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            TextFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    server = logging.getLogger("aiohttp.server")
    server.filters[:] = [MalformedRequestFilter()]
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Their DEBUG lines print records (`send: ... v=<the event>`): LOG_LEVEL=DEBUG is ours only.
    for library in ("faust", "mode"):
        logging.getLogger(library).setLevel(max(logging.INFO, root.level))
