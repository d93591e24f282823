"""Re-drive without a broker: selection, headers, summaries without payloads, resumable runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from billstream.redrive import replay as replays
from billstream.redrive.letters import DeadLetter, Selection, Summary
from billstream.redrive.replay import replay_headers, replay_topic


@dataclass
class Record:
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Any


def letter(offset: int, reason: str = "not_json", partition: int = 0, at: int = 1000) -> DeadLetter:
    headers = [
        ("stripe-event-id", f"evt_{partition}_{offset}".encode()),
        ("stripe-event-type", b"invoice.paid"),
        ("source", b"backfill"),
        ("error", reason.encode()),
    ]
    return DeadLetter.of(Record(partition, offset, at, b"cus_1", b"SECRET PAYLOAD", headers))


@dataclass
class RecordingSink:
    batches: list[list[DeadLetter]] = field(default_factory=list)
    fail_after: int | None = None

    async def publish(self, letters: list[DeadLetter]) -> None:
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise ConnectionError("broker gone")
        self.batches.append(list(letters))


async def stream(letters: list[DeadLetter]) -> AsyncIterator[DeadLetter]:
    for item in letters:
        yield item


def test_a_replayed_record_loses_its_error_and_says_where_it_came_from() -> None:
    headers = dict(replays.replay_headers(letter(0)))
    assert "error" not in headers
    assert headers["source"] == b"replayed-from-dlq"
    assert headers["stripe-event-id"] == b"evt_0_0"


def test_selection_by_reason_event_and_age() -> None:
    old, new = letter(0, "not_json", at=1000), letter(1, "bad_type", at=5000)
    assert Selection().takes(old)
    assert Selection(reason="bad_type").takes(new)
    assert not Selection(reason="bad_type").takes(old)
    assert Selection(event_id="evt_0_1").takes(new)
    assert not Selection(event_id="evt_0_1").takes(old)
    assert Selection(since_ms=2000).takes(new)
    assert not Selection(since_ms=2000).takes(old)


def test_the_summary_counts_and_names_ids_never_payloads() -> None:
    summary = Summary()
    for item in [letter(0), letter(1), letter(2, "bad_type", at=9000)]:
        summary.add(item)
    view = summary.as_dict()
    assert view["total"] == 3
    assert (view["oldest_ms"], view["newest_ms"]) == (1000, 9000)
    assert [(r["reason"], r["count"]) for r in view["reasons"]] == [
        ("not_json", 2),
        ("bad_type", 1),
    ]
    assert view["reasons"][0]["event_ids"] == ["evt_0_0", "evt_0_1"]
    assert "SECRET" not in repr(view)


async def test_an_interrupted_replay_resumes_after_its_last_acknowledged_batch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "checkpoint.json"
    letters = [letter(n, partition=n % 2) for n in range(7)]
    selection = Selection()
    failing = RecordingSink(fail_after=2)
    start = replays.load(path, "dlq", selection)
    with pytest.raises(ConnectionError):
        await replays.replay(stream(letters), selection, failing, start, path, batch_size=2)
    sent_first = [item.offset for batch in failing.batches for item in batch]
    assert sent_first == [0, 1, 2, 3]

    sink = RecordingSink()
    resumed = replays.load(path, "dlq", selection)
    done = await replays.replay(stream(letters), selection, sink, resumed, path, batch_size=2)
    assert [item.offset for batch in sink.batches for item in batch] == [4, 5, 6]
    assert done.replayed == 7
    again = RecordingSink()
    await replays.replay(
        stream(letters), selection, again, replays.load(path, "dlq", selection), path
    )
    assert again.batches == []  # everything already replayed: nothing sent


async def test_another_selection_starts_afresh_and_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    letters = [letter(0, "not_json"), letter(1, "bad_type")]
    await replays.replay(
        stream(letters), Selection(), RecordingSink(), replays.load(path, "dlq", Selection()), path
    )
    other = replays.load(path, "dlq", Selection(reason="bad_type"))
    assert other.next_offsets == {}
    dry_path = tmp_path / "dry.json"
    dry = await replays.replay(stream(letters), Selection(reason="bad_type"), None, other, dry_path)
    assert dry.replayed == 1
    assert not dry_path.exists()


def _letter(headers: list[tuple[str, bytes]]) -> DeadLetter:
    return DeadLetter(0, 0, 0, b"k", b"{}", headers, "resolve_not_found", "evt_1", "v1.x")


def test_a_resolver_letter_goes_back_to_the_thin_topic_without_its_replay_header() -> None:
    thin = _letter([("error", b"resolve_not_found"), ("replay-to", b"stripe.thin-events")])
    assert replay_topic(thin) == "stripe.thin-events"
    assert ("replay-to", b"stripe.thin-events") not in replay_headers(thin)
    assert replay_topic(_letter([("error", b"not_json")])) == "stripe.events"
    # Only a contract topic: a forged header cannot send records anywhere else.
    assert replay_topic(_letter([("replay-to", b"billing.account-state")])) == "stripe.events"
