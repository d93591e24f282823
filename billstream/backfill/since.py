"""`--since` values: an absolute time (unix seconds or ISO 8601) or a duration back from now."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Stripe's Events API keeps 30 days of events; older requests silently return nothing.
EVENTS_RETENTION_SECONDS = 30 * 86400

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def parse_since(value: str, now: float) -> int:
    """Unix seconds for `--since`: `1767225600`, `2026-01-01T00:00:00Z`, `90m`, `36h`, `3d`."""
    text = value.strip()
    if match := _DURATION.match(text):
        return int(now) - int(match.group(1)) * _UNITS[match.group(2)]
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {value!r} is neither a duration (90m, 36h, 3d), unix seconds nor ISO 8601"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
