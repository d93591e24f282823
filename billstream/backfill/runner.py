"""One backfill: spool the listed range, then publish it oldest first, checkpointing per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from billstream.backfill import checkpoint as checkpoints
from billstream.backfill.checkpoint import Checkpoint
from billstream.backfill.publisher import Spool, encode_event

BATCH_SIZE = 500


class Sink(Protocol):
    topic: str

    async def publish(self, bodies: list[bytes]) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What to backfill and where the checkpoint lives."""

    since: int
    patterns: tuple[str, ...]
    checkpoint_path: Path
    fresh: bool = False


def starting_point(plan: Plan, topic: str) -> tuple[Checkpoint, bool]:
    """The saved checkpoint when this run continues it, else a fresh one (and whether resumed)."""
    saved = None if plan.fresh else checkpoints.load(plan.checkpoint_path)
    if saved is not None and saved.resumes(topic, plan.since, plan.patterns):
        return saved, True
    return Checkpoint.fresh(topic, plan.since, plan.patterns), False


def spool_events(
    events: Iterable[dict[str, Any]],
    start: Checkpoint,
    spool: Spool,
    on_event: Callable[[], object] = lambda: None,
) -> int:
    """Spool every listed event the checkpoint does not already cover; returns how many listed."""
    listed = 0
    for event in events:
        listed += 1
        on_event()
        if event.get("created") == start.created and event.get("id") in start.ids:
            continue
        spool.add(encode_event(event))
    return listed


async def publish_spool(
    spool: Spool,
    sink: Sink,
    start: Checkpoint,
    checkpoint_path: Path,
    on_batch: Callable[[int], object] = lambda n: None,
    batch_size: int = BATCH_SIZE,
) -> Checkpoint:
    """Publish oldest first; the checkpoint is saved after each acknowledged batch."""
    current = start
    batch: list[bytes] = []

    async def flush() -> None:
        nonlocal current
        await sink.publish(batch)
        for body in batch:
            event = orjson.loads(body)
            current = current.advance(str(event["id"]), int(event["created"]))
        await asyncio.to_thread(checkpoints.save, checkpoint_path, current)
        on_batch(len(batch))
        batch.clear()

    for body in spool.oldest_first():
        batch.append(body)
        if len(batch) >= batch_size:
            await flush()
    if batch:
        await flush()
    return current
