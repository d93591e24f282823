"""POST deliveries to ingest like Stripe does: signed at send time, paced, bounded concurrency,
retried on 5xx and network errors with backoff, one customer's deliveries one after another.

Per-customer ordering is what makes the expected state computable: Kafka keeps each customer's
events in the order ingest acknowledged them, and that is the order the simulator folds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from billstream.simulate.traffic import Delivery, Outcome
from billstream.stripe_signing import sign_payload

STALE_SECRET = "whsec_rotated_out_long_ago"  # noqa: S105 -- deliberately wrong, not a secret
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
RETRIED_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class SendOptions:
    url: str
    secret: str
    rate: float  # deliveries per second
    duration: float  # seconds; no delivery starts more than 10% (at least 1 s) after it
    concurrency: int = 16
    timeout: float = 10.0
    max_retries: int = 4
    backoff: float = 0.25
    thin_url: str | None = None  # thin deliveries' endpoint (default: url + "/thin")
    connect_secret: str | None = None  # Connect deliveries' secret (default: `secret`)
    connect_url: str | None = None  # their endpoint (default: url + "/connect")


@dataclass
class SendReport:
    outcomes: list[Outcome] = field(default_factory=list)  # per customer in acknowledgement order
    retried_statuses: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    stopped_early: bool = False

    def counts(self) -> Counter[str]:
        return Counter(outcome.status for outcome in self.outcomes)


class Sender:
    def __init__(self, options: SendOptions, on_outcome: Callable[[Outcome], None] | None = None):
        self.options = options
        self.on_outcome = on_outcome or (lambda _: None)
        self.report = SendReport()

    async def run(self, deliveries: Iterable[Delivery], total: int) -> SendReport:
        """Send up to `total` deliveries at the configured rate; when ingest cannot keep up,
        stop starting new ones shortly after the duration (the report says so)."""
        opts = self.options
        timeout = aiohttp.ClientTimeout(total=opts.timeout)
        connector = aiohttp.TCPConnector(limit=opts.concurrency)
        slots = asyncio.Semaphore(opts.concurrency)
        backlog = asyncio.Semaphore(opts.concurrency * 4)  # pacing stalls when ingest lags
        chains: dict[str, asyncio.Task[None]] = {}
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            for index, delivery in enumerate(deliveries):
                if index >= total:
                    break
                await asyncio.sleep(max(0.0, started + index / opts.rate - loop.time()))
                await backlog.acquire()
                if loop.time() - started > opts.duration + max(1.0, opts.duration / 10):
                    self.report.stopped_early = True
                    backlog.release()
                    break
                previous = chains.get(delivery.customer_id or "")
                task = asyncio.create_task(
                    self._deliver(session, slots, backlog, delivery, previous)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if delivery.customer_id:
                    chains[delivery.customer_id] = task
            await asyncio.gather(*tasks)
        self.report.elapsed = loop.time() - started
        return self.report

    async def _deliver(
        self,
        session: aiohttp.ClientSession,
        slots: asyncio.Semaphore,
        backlog: asyncio.Semaphore,
        delivery: Delivery,
        previous: asyncio.Task[None] | None,
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])
            async with slots:
                outcome = await self._post_with_retries(session, delivery)
            self.report.outcomes.append(outcome)
            self.on_outcome(outcome)
        finally:
            backlog.release()

    async def _post_with_retries(
        self, session: aiohttp.ClientSession, delivery: Delivery
    ) -> Outcome:
        opts = self.options
        attempt = 0
        while True:
            attempt += 1
            status, retryable = await self._post(session, delivery)
            if not retryable or attempt > opts.max_retries:
                return Outcome(delivery, status, attempt)
            self.report.retried_statuses[status] += 1
            await asyncio.sleep(min(8.0, opts.backoff * 2 ** (attempt - 1)))

    async def _post(self, session: aiohttp.ClientSession, delivery: Delivery) -> tuple[str, bool]:
        """(outcome status, retry?) of one attempt, signed with a fresh timestamp like Stripe."""
        secret = self.options.secret
        if delivery.destination == "connect":
            secret = self.options.connect_secret or secret
        if delivery.kind == "bad_signature":
            secret = STALE_SECRET
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": sign_payload(delivery.body, secret, int(time.time())),
        }
        try:
            url = self.options.url
            if delivery.destination == "thin":
                url = self.options.thin_url or url.rstrip("/") + "/thin"
            elif delivery.destination == "connect":
                url = self.options.connect_url or url.rstrip("/") + "/connect"
            async with session.post(url, data=delivery.body, headers=headers) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                status = body.get("status") if isinstance(body, dict) else None
                return str(status or f"http_{resp.status}"), resp.status in RETRIED_STATUSES
        except (aiohttp.ClientError, TimeoutError):
            return "error", True
