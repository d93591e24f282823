"""What the handler and the table writer need of the worker's producer (no Faust import)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Producer(Protocol):
    """The worker's producer (processors/runtime/producer.py): queues a record; a failure fails
    the next flush, which precedes every offset commit."""

    async def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None: ...


class ChangelogProducer(Producer, Protocol):
    """... that also reports each delivered record's offset (the table persists it)."""

    def on_delivery(self, topic: str, listener: Callable[[int, int], None]) -> None: ...
