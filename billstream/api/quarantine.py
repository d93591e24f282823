"""Records the read model cannot store: kept aside with their reason, so the ones after them flow.

A record is quarantined only for what its own data causes (validation, or the database refusing
that value); an unreachable, full or read-only database is a write error instead, and the batch
is retried, never skipped (docs/api.md, "Quarantine").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from sqlalchemy.exc import DataError, IntegrityError, StatementError

# Raised for a value itself: out of the column's range or size, a constraint, or a driver that
# cannot bind it (SQLite raises a bare OverflowError for integers beyond 64 bits).
_DATA_ERRORS = (DataError, IntegrityError, OverflowError, ValueError, TypeError)
REASON_MAX_CHARS = 2000


def refused_by_data(error: BaseException) -> bool:
    """True when `error` is the record's fault, not the database's."""
    if isinstance(error, _DATA_ERRORS):
        return True
    return isinstance(error, StatementError) and isinstance(error.orig, _DATA_ERRORS)


@dataclass(frozen=True)
class QuarantinedRecord:
    """One record and why it was not stored (the `quarantined_records` row)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes], reason: str) -> QuarantinedRecord:
        return cls(record.topic, record.partition, record.offset, record.key, record.value, reason)

    def row(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "value": self.value,
            "reason": self.reason[:REASON_MAX_CHARS],
            "quarantined_at": time.time_ns() // 1_000_000,
        }
