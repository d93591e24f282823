"""Backfilled events onto stripe.events: the key and headers of ingest, plus `source: backfill`."""

from __future__ import annotations

import asyncio
import tempfile
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaProducer

from billstream.kafka_security import aiokafka_options
from billstream.limits import record_bytes
from billstream.routing import event_key, record_headers
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS

SOURCE = "backfill"


def _default(value: object) -> object:
    # stripe-python turns Stripe's decimal strings into Decimal; str() gives the same text back.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The event JSON as Stripe would send it in a webhook body."""
    return orjson.dumps(event, default=_default)


class Spool:
    """Events written newest first to a temporary file and read back oldest first.

    Stripe lists newest first; keeping the bodies on disk keeps memory flat for large ranges.
    """

    def __init__(self) -> None:
        # Closed by __exit__; the file lives as long as the spool, not one `with` block.
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="billstream-backfill-")  # noqa: SIM115
        self._offsets = array("q", [0])

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()

    def add(self, body: bytes) -> None:
        self._file.write(body)
        self._offsets.append(self._offsets[-1] + len(body))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def oldest_first(self) -> Iterator[bytes]:
        self._file.flush()
        for index in reversed(range(len(self))):
            start, end = self._offsets[index], self._offsets[index + 1]
            self._file.seek(start)
            yield self._file.read(end - start)


class Publisher:
    """An idempotent acks=all producer; `publish` returns once Kafka acknowledged every record."""

    def __init__(self, settings: Settings, source: str = SOURCE) -> None:
        self.topic = settings.topic(STRIPE_EVENTS)
        self.platform = settings.stripe_account_id  # its events keep the customer-id key
        self.source = source  # the `source` header: `backfill`, or `drift` for a heal
        self._producer = AIOKafkaProducer(
            **aiokafka_options(settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=record_bytes(settings.stripe_webhook_max_body),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, bodies: Sequence[bytes]) -> None:
        """Send in order (one producer keeps per-partition order) and wait for every ack."""
        received_at_ms = int(time.time() * 1000)
        futures = []
        for body in bodies:
            event = orjson.loads(body)
            futures.append(
                await self._producer.send(
                    self.topic,
                    value=body,
                    key=event_key(event, self.platform).encode(),  # as ingest keys it
                    headers=record_headers(event, received_at_ms, source=self.source),
                )
            )
        await asyncio.gather(*futures)
