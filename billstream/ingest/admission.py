"""Load shedding: at most `limit` webhooks waiting for the broker, the rest a fast 503.

Beyond capacity, answers would otherwise queue for longer than any sender waits (Stripe gives
up after seconds and retries later anyway), and every one of them would become a retry. Two
signals, either enough (docs/ingest.md, "Overload"):
- the publishes awaiting their acknowledgement: they pile up when the broker or the producer
  falls behind;
- how late the event loop runs a timer (`LoopLag`): when this process's own CPU is the limit,
  requests wait to be read, not for the broker, and the in-flight count stays low. An overload
  run at 1.5 times capacity had answers at 30 s and no 503 at all before this signal.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from prometheus_client import Gauge


@dataclass(slots=True)
class LoopLag:
    """How late the running loop woke a timer (`run` measures it every `interval`): about how
    long a request that arrives now waits before its handler starts.

    `seconds` is the smaller of the last two measurements: a loop that stays late, not one
    pause (a full garbage collection, a slow callback) that is already over."""

    interval: float = 0.05
    gauge: Gauge | None = None
    last: float = 0.0
    previous: float = 0.0

    @property
    def seconds(self) -> float:
        return min(self.last, self.previous)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.previous, self.last = self.last, max(0.0, loop.time() - due)
            if self.gauge is not None:
                self.gauge.set(self.last)


@dataclass(slots=True)
class Admission:
    """Counts webhooks between `admit` and `release`; `admit` says no at `limit`, or while the
    loop runs more than `max_lag` seconds late."""

    limit: int
    gauge: Gauge | None = None
    lag: LoopLag | None = None
    max_lag: float = float("inf")
    in_flight: int = field(default=0, init=False)

    def admit(self) -> bool:
        if self.in_flight >= self.limit:
            return False
        if self.lag is not None and self.lag.seconds > self.max_lag:
            return False
        self.in_flight += 1
        if self.gauge is not None:
            self.gauge.inc()
        return True

    def release(self) -> None:
        self.in_flight -= 1
        if self.gauge is not None:
            self.gauge.dec()
