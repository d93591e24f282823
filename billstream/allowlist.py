"""Which event types billstream takes: exact names and `prefix.*` patterns (ingest, backfill)."""

from __future__ import annotations

from collections.abc import Iterable


class EventAllowlist:
    """Matches an event type against exact names, `prefix.*` patterns and `*` (everything)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        items = tuple(patterns)
        self._everything = "*" in items
        self._exact = frozenset(item for item in items if not item.endswith(".*"))
        # "invoice.*" keeps its dot: it matches "invoice.paid", never "invoice" or "invoices.x".
        self._prefixes = tuple(item[:-1] for item in items if item.endswith(".*"))

    def allows(self, event_type: str) -> bool:
        if self._everything or event_type in self._exact:
            return True
        return bool(self._prefixes) and event_type.startswith(self._prefixes)
