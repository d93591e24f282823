"""Dead letters as read from `stripe.events.dlq`: who they are, why they died, which to replay.

A summary names reasons, event types, times and event ids, never payloads (they may carry
customer data): what an operator needs to decide what to fix and re-drive.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from billstream.processors.dlq import header_items, header_value
from billstream.routing import HEADER_ERROR, HEADER_EVENT_ID, HEADER_EVENT_TYPE

IDS_SHOWN = 20  # event ids listed per reason


class DlqRecord(Protocol):
    """The parts of a consumed DLQ record read here (aiokafka's ConsumerRecord has them)."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Any


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str
    event_id: str
    event_type: str

    @classmethod
    def of(cls, record: DlqRecord) -> DeadLetter:
        headers = header_items(record.headers)

        def text(name: str) -> str:
            value = header_value(headers, name)
            return "" if value is None else value.decode(errors="replace")

        return cls(
            record.partition,
            record.offset,
            record.timestamp,
            record.key,
            record.value,
            headers,
            text(HEADER_ERROR) or "unknown",
            text(HEADER_EVENT_ID),
            text(HEADER_EVENT_TYPE),
        )


@dataclass(frozen=True)
class Selection:
    """Which dead letters a replay takes: all of them, or by reason, event id and age."""

    reason: str | None = None
    event_id: str | None = None
    since_ms: int | None = None

    def takes(self, letter: DeadLetter) -> bool:
        return (
            (self.reason is None or letter.reason == self.reason)
            and (self.event_id is None or letter.event_id == self.event_id)
            and (self.since_ms is None or letter.timestamp_ms >= self.since_ms)
        )

    def key(self) -> str:
        """Names the selection in a checkpoint: a resume continues only the same selection."""
        return f"reason={self.reason or '*'},event_id={self.event_id or '*'},since={self.since_ms}"


@dataclass
class Summary:
    """Counts by reason and event type, the oldest and newest, some event ids per reason."""

    total: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_reason_and_type: Counter[tuple[str, str]] = field(default_factory=Counter)
    oldest_ms: int | None = None
    newest_ms: int | None = None
    ids: dict[str, list[str]] = field(default_factory=dict)

    def add(self, letter: DeadLetter) -> None:
        self.total += 1
        self.by_reason[letter.reason] += 1
        self.by_reason_and_type[(letter.reason, letter.event_type or "?")] += 1
        stamp = letter.timestamp_ms
        self.oldest_ms = stamp if self.oldest_ms is None else min(self.oldest_ms, stamp)
        self.newest_ms = stamp if self.newest_ms is None else max(self.newest_ms, stamp)
        shown = self.ids.setdefault(letter.reason, [])
        if len(shown) < IDS_SHOWN and letter.event_id:
            shown.append(letter.event_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "oldest_ms": self.oldest_ms,
            "newest_ms": self.newest_ms,
            "reasons": [
                {
                    "reason": reason,
                    "count": count,
                    "types": {
                        event_type: n
                        for (r, event_type), n in sorted(self.by_reason_and_type.items())
                        if r == reason
                    },
                    "event_ids": self.ids.get(reason, []),
                }
                for reason, count in self.by_reason.most_common()
            ],
        }
