"""Where an interrupted backfill resumes: the newest event already acknowledged by Kafka.

Events are published oldest first, so everything created before the checkpoint's second is in
the topic; the ids published within that second are kept so a resume skips exactly those.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import orjson

DEFAULT_DIR = Path("var") / "backfill"


@dataclass(frozen=True)
class Checkpoint:
    """A backfill of `topic` for `types` that has published everything from `since` to `created`."""

    topic: str
    since: int
    types: tuple[str, ...]
    created: int
    ids: tuple[str, ...] = ()
    published: int = 0

    @classmethod
    def fresh(cls, topic: str, since: int, types: tuple[str, ...]) -> Checkpoint:
        return cls(topic=topic, since=since, types=types, created=since)

    def resumes(self, topic: str, since: int, types: tuple[str, ...]) -> bool:
        """True when this run's range starts inside the range already published."""
        return self.topic == topic and self.types == types and self.since <= since <= self.created

    def advance(self, event_id: str, created: int) -> Checkpoint:
        """After `event_id` (created at `created`, never older than the last) was acknowledged."""
        ids = (*self.ids, event_id) if created == self.created else (event_id,)
        return replace(self, created=created, ids=ids, published=self.published + 1)


def default_path(topic: str) -> Path:
    return DEFAULT_DIR / f"{topic}.json"


def load(path: Path) -> Checkpoint | None:
    """The saved checkpoint, or None when there is none yet."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError as error:
        raise ValueError(f"checkpoint {path} is not valid JSON ({error}); delete it") from None
    return Checkpoint(
        topic=str(data["topic"]),
        since=int(data["since"]),
        types=tuple(data["types"]),
        created=int(data["created"]),
        ids=tuple(data["ids"]),
        published=int(data["published"]),
    )


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Atomically: a crash mid-write leaves the previous checkpoint, never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(asdict(checkpoint), option=orjson.OPT_INDENT_2))
    os.replace(temporary, path)
