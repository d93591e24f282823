"""The publisher interface the webhook handler depends on, so tests and benchmarks can swap it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PublishError(Exception):
    """The record was not acknowledged by the broker (the webhook answer is then 503)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record: the raw webhook body under its routing key, with the contract headers."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class Publisher(Protocol):
    """Durable writes: `publish` returns only once the broker acknowledged (acks=all)."""

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

    async def publish(self, record: Record) -> None:
        """Write `record`; raise `PublishError` if the broker does not acknowledge it."""
        ...
