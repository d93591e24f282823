"""The publisher interface the webhook handler depends on, so tests and benchmarks can swap it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol


class PublishError(Exception):
    """The record was not acknowledged by the broker (the webhook answer is then 503)."""


class RecordTooLarge(PublishError):
    """The record is larger than the topic or the broker accepts: retrying cannot help (413)."""


@dataclass(slots=True)
class Record:
    """One Kafka record: the raw webhook body under its routing key, with the contract headers."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class Publisher(Protocol):
    """Durable writes: the future `publish` returns resolves once the broker acknowledged."""

    @property
    def ready(self) -> bool:
        """True while the broker is reachable; drives `/readyz`."""
        ...

    async def start(self) -> None:
        """Begin connecting; must not wait for the broker, which may still be starting."""
        ...

    async def stop(self) -> None:
        """Deliver what is in flight (bounded), then release every resource."""
        ...

    def publish(self, record: Record) -> asyncio.Future[None]:
        """Hand `record` to the broker; the future fails with `PublishError` if it is not written.

        A plain future, not a coroutine: the caller bounds the wait by failing the future itself
        (`Deadlines`), which is cheaper per request than a timeout around a coroutine. May raise
        `PublishError` at once, e.g. while the broker is known to be unreachable.
        """
        ...
