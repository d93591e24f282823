"""`make bench-redrive`: dead letters re-driven per second, as a ratio to a bare copy loop.

Against the dev broker, in the same run: N dead letters (3 KB Stripe-shaped bodies, the DLQ's
headers) are written to a fresh DLQ topic, then
  bare     aiokafka reads the topic from the beginning and produces each record to another
           topic (acks=all, idempotent, waiting for every acknowledgement) - baseline
  replay   `billstream dlq replay`'s code path: read, select, rewrite the headers, publish in
           acknowledged batches of 500, checkpoint after each
Each runs --rounds times, alternating, best kept. Results are printed (records/s and ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from billstream.redrive import replay as replays
from billstream.redrive.cli import Republisher, dead_letters
from billstream.redrive.letters import Selection
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS_DLQ, ensure_topics
from billstream.verify.readers import TopicRead, read_topic
from tests.support import factories as f
from tests.support.stripe_fields import with_stripe_fields


def letters(count: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    records = []
    for n in range(count):
        event = with_stripe_fields(
            f.subscription_event(
                "customer.subscription.updated",
                created=1_767_225_600 + n,
                event_id=f"evt_bench_{n}",
                customer=f"cus_{n % 1000}",
                prices=[f.pro_monthly()],
            )
        )
        headers = [
            ("stripe-event-id", f"evt_bench_{n}".encode()),
            ("stripe-event-type", b"customer.subscription.updated"),
            ("received-at", b"1767225600000"),
            ("error", b"reducer_error"),
        ]
        records.append((f"cus_{n % 1000}".encode(), orjson.dumps(event), headers))
    return records


async def fill(settings: Settings, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(settings.topic(STRIPE_EVENTS_DLQ), value=v, key=k, headers=h)
            for k, v, h in letters(count)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def bare(settings: Settings) -> int:
    topic = settings.topic(STRIPE_EVENTS_DLQ)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    count = 0
    try:
        pending = []
        async for record in read_topic(settings, topic, TopicRead(topic)):
            pending.append(
                await producer.send(
                    settings.topic("bench.sink"), value=record.value, key=record.key,
                    headers=list(record.headers),
                )
            )  # fmt: skip
            count += 1
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


async def redrive(settings: Settings, checkpoint: Path) -> int:
    sink = Republisher(settings)
    await sink.producer.start()
    try:
        start = replays.Checkpoint(settings.topic(STRIPE_EVENTS_DLQ), Selection().key())
        done = await replays.replay(dead_letters(settings), Selection(), sink, start, checkpoint)
    finally:
        await sink.producer.stop()
    return done.replayed


async def main(count: int, rounds: int) -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    settings = Settings(
        _env_file=None,
        kafka_bootstrap_servers=bootstrap,
        billstream_topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
    )
    await ensure_topics(settings)
    await fill(settings, count)
    best = {"bare": 0.0, "replay": 0.0}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(rounds):
            for name in ("bare", "replay"):
                started = time.perf_counter()
                if name == "bare":
                    done = await bare(settings)
                else:
                    done = await redrive(settings, Path(scratch) / f"{uuid.uuid4().hex}.json")
                rate = done / (time.perf_counter() - started)
                assert done == count, (name, done)
                best[name] = max(best[name], rate)
                print(f"{name}: {rate:,.0f} records/s")
    print(f"bare copy loop: {best['bare']:,.0f} records/s (best of {rounds})")
    print(
        f"dlq replay: {best['replay']:,.0f} records/s = {best['replay'] / best['bare']:.2f} of bare"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.records, arguments.rounds))
