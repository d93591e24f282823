"""Re-drive: dead letters back onto `stripe.events`, resumable, and safe to run twice.

Each record goes back with its key and its headers, less the DLQ's `error`, plus
`source: replayed-from-dlq`; the worker folds it like any event (the reducer stays the only
writer of state) and de-duplicates by event id, so a second run changes nothing. A record that
fails again is dead-lettered again with its new reason. The checkpoint (per partition, the next
DLQ offset not yet re-published) is saved after each acknowledged batch.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson

from billstream.processors.dlq import HEADER_REPLAY_TO
from billstream.redrive.letters import DeadLetter, Selection
from billstream.routing import HEADER_ERROR, HEADER_SOURCE
from billstream.topics import STRIPE_EVENTS, STRIPE_THIN_EVENTS

REPLAYABLE = (STRIPE_EVENTS, STRIPE_THIN_EVENTS)

SOURCE = b"replayed-from-dlq"
BATCH_SIZE = 500
DEFAULT_CHECKPOINT_DIR = Path("var") / "dlq-replay"


class Sink(Protocol):
    async def publish(self, letters: list[DeadLetter]) -> None:
        """Send in order and return once Kafka acknowledged every record."""
        ...


@dataclass
class Checkpoint:
    """How far a replay of `selection` from `topic` got: partition -> next offset to consider."""

    topic: str
    selection: str
    next_offsets: dict[int, int] = field(default_factory=dict)
    replayed: int = 0

    def covers(self, letter: DeadLetter) -> bool:
        return letter.offset < self.next_offsets.get(letter.partition, 0)


def replay_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    dropped = (HEADER_ERROR, HEADER_SOURCE, HEADER_REPLAY_TO)
    kept = [(k, v) for k, v in letter.headers if k not in dropped]
    return [*kept, (HEADER_SOURCE, SOURCE)]


def replay_topic(letter: DeadLetter) -> str:
    """The contract topic a letter goes back to: its `replay-to` (the resolver's records go back
    to stripe.thin-events), else stripe.events. Any other value is not trusted: stripe.events."""
    for key, value in letter.headers:
        if key == HEADER_REPLAY_TO and value.decode(errors="replace") in REPLAYABLE:
            return value.decode()
    return STRIPE_EVENTS


def load(path: Path, topic: str, selection: Selection) -> Checkpoint:
    """The saved checkpoint of this topic and selection, or a fresh one."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return Checkpoint(topic, selection.key())
    if data.get("topic") != topic or data.get("selection") != selection.key():
        return Checkpoint(topic, selection.key())
    offsets = {int(p): int(o) for p, o in data["next_offsets"].items()}
    return Checkpoint(topic, selection.key(), offsets, int(data["replayed"]))


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Atomically: a crash mid-write leaves the previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    body = {
        "topic": checkpoint.topic,
        "selection": checkpoint.selection,
        "next_offsets": {str(p): o for p, o in sorted(checkpoint.next_offsets.items())},
        "replayed": checkpoint.replayed,
    }
    temporary.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    os.replace(temporary, path)


async def replay(
    letters: AsyncIterable[DeadLetter],
    selection: Selection,
    sink: Sink | None,
    checkpoint: Checkpoint,
    path: Path,
    on_letter: Callable[[bool], object] = lambda taken: None,
    batch_size: int = BATCH_SIZE,
) -> Checkpoint:
    """Publish every selected letter the checkpoint does not cover; `sink=None` is a dry run."""
    batch: list[DeadLetter] = []

    async def flush() -> None:
        if sink is not None:
            await sink.publish(batch)
            offsets = checkpoint.next_offsets
            for letter in batch:
                offsets[letter.partition] = max(offsets.get(letter.partition, 0), letter.offset + 1)
        checkpoint.replayed += len(batch)
        if sink is not None:
            await asyncio.to_thread(save, path, checkpoint)
        batch.clear()

    async for letter in letters:
        taken = selection.takes(letter) and not checkpoint.covers(letter)
        on_letter(taken)
        if taken:
            batch.append(letter)
            if len(batch) >= batch_size:
                await flush()
    if batch:
        await flush()
    return checkpoint
