"""An interrupted backfill resumes where Kafka last acknowledged, publishing each event once."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from billstream.backfill import checkpoint as checkpoints
from billstream.backfill.checkpoint import Checkpoint
from billstream.backfill.publisher import Spool, encode_event
from billstream.backfill.runner import Plan, publish_spool, spool_events, starting_point
from billstream.backfill.since import parse_since
from tests.support.stripe_api import stripe_event

TOPIC = "t.stripe.events"


class FlakySink:
    """Acknowledges batches until `fail_after` of them, then fails like a lost broker."""

    topic = TOPIC

    def __init__(self, fail_after: int | None = None) -> None:
        self.published: list[str] = []
        self.fail_after = fail_after

    async def publish(self, bodies: list[bytes]) -> None:
        if self.fail_after is not None and self.fail_after == 0:
            raise ConnectionError("broker went away")
        if self.fail_after is not None:
            self.fail_after -= 1
        self.published.extend(orjson.loads(body)["id"] for body in bodies)


def newest_first(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(events, key=lambda e: (e["created"], e["id"]), reverse=True)


async def backfill_once(plan: Plan, listed: list[dict[str, object]], sink: FlakySink) -> int:
    start, _ = starting_point(plan, TOPIC)
    since = start.created
    with Spool() as spool:
        spool_events([e for e in listed if int(str(e["created"])) >= since], start, spool)
        await publish_spool(spool, sink, start, plan.checkpoint_path, batch_size=3)
        return len(spool)


async def test_resume_after_a_failed_batch_publishes_the_rest_exactly_once(
    tmp_path: Path,
) -> None:
    # Ten events, several sharing a second, so the resume must skip by id within one second.
    history = [stripe_event(i, 100 + i // 3, "invoice.paid", "cus_1") for i in range(10)]
    plan = Plan(since=100, patterns=("*",), checkpoint_path=tmp_path / "cp.json")

    first = FlakySink(fail_after=2)
    with pytest.raises(ConnectionError):
        await backfill_once(plan, newest_first(history), first)
    saved = checkpoints.load(plan.checkpoint_path)
    assert first.published == [f"evt_{i:06d}" for i in range(6)]  # oldest first
    assert saved is not None
    assert (saved.created, saved.ids, saved.published) == (
        101,
        ("evt_000003", "evt_000004", "evt_000005"),
        6,
    )

    second = FlakySink()
    assert await backfill_once(plan, newest_first(history), second) == 4
    assert second.published == [f"evt_{i:06d}" for i in range(6, 10)]
    final = checkpoints.load(plan.checkpoint_path)
    assert final is not None
    assert final.published == 10


def test_a_checkpoint_is_reused_only_for_the_range_it_covers(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    checkpoints.save(path, Checkpoint(TOPIC, since=100, types=("*",), created=500, ids=("e",)))

    def resumed(since: int, types: tuple[str, ...] = ("*",), fresh: bool = False) -> bool:
        return starting_point(Plan(since, types, path, fresh), TOPIC)[1]

    assert resumed(100)
    assert resumed(300)
    assert not resumed(99)  # starts before what was published
    assert not resumed(501)  # starts after it: a gap would be recorded as covered
    assert not resumed(300, ("invoice.*",))
    assert not resumed(300, fresh=True)


def test_a_torn_checkpoint_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="delete it"):
        checkpoints.load(path)


def test_spool_reads_back_oldest_first() -> None:
    events = [stripe_event(i, 100 + i, "invoice.paid", "cus_1") for i in range(5)]
    with Spool() as spool:
        for event in newest_first(events):
            spool.add(encode_event(event))
        assert [orjson.loads(b)["id"] for b in spool.oldest_first()] == [e["id"] for e in events]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90m", 10_000 - 5_400),
        ("2h", 10_000 - 7_200),
        ("1767225600", 1_767_225_600),
        ("2026-01-01T00:00:00Z", 1_767_225_600),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600),
        ("2026-01-01T00:00:00", 1_767_225_600),
    ],
)
def test_since_accepts_durations_and_timestamps(value: str, expected: int) -> None:
    assert parse_since(value, now=10_000.5) == expected


def test_since_rejects_anything_else() -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday", now=0)
