"""Load shedding: at most `limit` webhooks waiting for the broker, the rest a fast 503.

Beyond capacity, answers would otherwise queue for longer than any sender waits (Stripe gives
up after seconds and retries later anyway), and every one of them would become a retry. The
number of publishes awaiting their acknowledgement is the signal: it grows when the broker, the
producer or this process's CPU falls behind, whichever it is (docs/ingest.md, "Overload").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import Gauge


@dataclass(slots=True)
class Admission:
    """Counts webhooks between `admit` and `release`; `admit` says no at `limit`."""

    limit: int
    gauge: Gauge | None = None
    in_flight: int = field(default=0, init=False)

    def admit(self) -> bool:
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        if self.gauge is not None:
            self.gauge.inc()
        return True

    def release(self) -> None:
        self.in_flight -= 1
        if self.gauge is not None:
            self.gauge.dec()
