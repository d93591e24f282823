"""The soak's traffic: an endless realistic Stripe stream posted open-loop, and visibility probes.

Events come in chunks of customer lives (tests/support/workload.py, Stripe-sized payloads);
each customer is pinned to one keep-alive connection so its deliveries are acknowledged, and so
land in Kafka, in order. For one customer in `sample_every`, the pure reducer folds its events
here too: every version change becomes a probe, and the prober polls the api until it serves
that version. Latencies count from the instant a request was due (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import orjson

from billstream.processors.config import ReducerConfig
from billstream.processors.reducer import apply
from billstream.routing import routing_key
from billstream.stripe_signing import sign_payload
from billstream.tables.state import CustomerState
from tests.support.stripe_fields import with_stripe_fields
from tests.support.workload import build_workload

CHUNK_CUSTOMERS = 1000  # ~10,000 events per chunk
TEMPLATE_TAG = b"soak00000_"  # in every customer, subscription and invoice id of the template
PATH = "/webhooks/stripe"


@dataclass(frozen=True, slots=True)
class Outgoing:
    customer: str
    body: bytes
    sampled: bool = False  # its customer is probed and folded by the oracle


@dataclass
class Sampled:
    """The pure reducer run over the sampled customers' events: probes and the oracle."""

    config: ReducerConfig
    acked: dict[str, CustomerState] = field(default_factory=dict)  # events answered 2xx

    def acknowledge(self, outgoing: Outgoing) -> int | None:
        """Fold an event answered 2xx into its customer's acknowledged state; the new account
        version if it changed. Only those: an event answered 503 never reached the pipeline
        (an overload run's oracle, folding every event sent, reported those
        customers as mismatches and their versions as never served)."""
        before = self.acked.get(outgoing.customer)
        after, _ = apply(before, orjson.loads(outgoing.body), self.config)
        self.acked[outgoing.customer] = after
        old = before.account.version if before and before.account else 0
        new = after.account.version if after.account else 0
        return new if new != old else None


def template() -> list[tuple[str, bytes]]:
    """Interleaved customer lives with Stripe-sized payloads, pretty-printed like Stripe's."""
    workload = build_workload(
        CHUNK_CUSTOMERS, seed=1, prefix=f"cus_{TEMPLATE_TAG.decode()}", poison_rate=0.0
    )
    out = []
    for _, value, _ in workload.records:
        event = with_stripe_fields(orjson.loads(value))
        out.append((routing_key(event), orjson.dumps(event, option=orjson.OPT_INDENT_2)))
    return out


class Feeder(Iterator[Outgoing]):
    """Endless events: chunk k is the template with k in every id (a byte replace, cheap), so
    customers and event ids never repeat; sampled customers go through the reducer."""

    def __init__(self, sampled: Sampled, sample_every: int) -> None:
        self.sampled = sampled
        self.sample_every = sample_every
        self.template = template()
        self.index = 0
        self.current: deque[Outgoing] = deque()

    def __next__(self) -> Outgoing:
        if not self.current:
            self.index += 1
            self.current.extend(self._chunk(self.index))
        return self.current.popleft()

    def _chunk(self, index: int) -> Iterator[Outgoing]:
        tag = b"soak%05d_" % index
        event_ids = b'"evt_%05d' % index
        for customer, body in self.template:
            customer = customer.replace(TEMPLATE_TAG.decode(), tag.decode())
            body = body.replace(TEMPLATE_TAG, tag).replace(b'"evt_', event_ids)
            if zlib.crc32(customer.encode()) % self.sample_every:
                yield Outgoing(customer, body)
            else:
                yield Outgoing(customer, body, sampled=True)


def request(host: str, port: int, body: bytes, secret: str) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Stripe-Signature: {sign_payload(body, secret)}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Results:
    statuses: Counter[str] = field(default_factory=Counter)
    http_latencies: list[float] = field(default_factory=list)
    visibility: list[float] = field(default_factory=list)
    visible_at: list[float] = field(default_factory=list)  # monotonic time of each visibility
    # From the 2xx answer to visible: the worker's and the api's part alone (the rest of the
    # visibility is ingest's answer and any wait in the sender's per-customer lane).
    after_answer: list[float] = field(default_factory=list)
    sent: int = 0
    unresolved: int = 0
    started: float = field(default_factory=time.monotonic)  # created as the load starts


class Prober:
    """Polls the api for sampled customers until each expected version is served."""

    def __init__(
        self,
        api_url: str,
        results: Results,
        sampled: Sampled,
        interval: float = 0.1,
        per_round: int = 10,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.api_url = api_url
        self.headers = headers  # the api's bearer token
        self.results = results
        self.interval = interval
        self.per_round = per_round  # bounds the probes' load on the api: 100 GETs/s by default
        self.pending: dict[str, deque[tuple[int, float, float]]] = {}  # oldest first
        self.sampled = sampled  # its `acked` is the oracle

    def expect(self, customer: str, version: int, since: float, answered: float) -> None:
        self.pending.setdefault(customer, deque()).append((version, since, answered))

    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout, headers=self.headers) as session:
            while not (stop.is_set() and not self.pending):
                started = time.monotonic()
                await asyncio.gather(
                    *(self._poll(session, c) for c in list(self.pending)[: self.per_round])
                )
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _poll(self, session: aiohttp.ClientSession, customer: str) -> None:
        try:
            async with session.get(f"{self.api_url}/accounts/{customer}") as response:
                if response.status != 200:
                    return
                served = (await response.json())["version"]
        except (aiohttp.ClientError, TimeoutError):
            return
        now = time.monotonic()
        queue = self.pending[customer]
        while queue and queue[0][0] <= served:
            _, since, answered = queue.popleft()
            self.results.visibility.append(now - since)
            self.results.visible_at.append(now)
            self.results.after_answer.append(now - answered)
        if not queue:
            del self.pending[customer]

    def give_up(self) -> None:
        self.results.unresolved += sum(len(q) for q in self.pending.values())
        self.pending.clear()


async def connection(
    host: str, port: int, secret: str, queue: asyncio.Queue[tuple[float, Outgoing] | None],
    results: Results, prober: Prober,
) -> None:  # fmt: skip
    """One keep-alive connection: send the next due request, read its answer, repeat."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (item := await queue.get()) is not None:
            due, outgoing = item
            try:
                writer.write(request(host, port, outgoing.body, secret))
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed an idle keep-alive connection: send again on a new one.
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request(host, port, outgoing.body, secret))
                head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            answered = time.monotonic()
            results.http_latencies.append(answered - due)
            status = head[9:12].decode()
            results.statuses[status] += 1
            if status == "200" and outgoing.sampled:
                version = prober.sampled.acknowledge(outgoing)
                if version is not None:
                    prober.expect(outgoing.customer, version, due, answered)
    finally:
        writer.close()


async def post_open_loop(
    host: str, port: int, secret: str, rate: float, duration: float,
    stream: Iterator[Outgoing], results: Results, prober: Prober, connections: int = 64,
) -> None:  # fmt: skip
    """Post `rate` webhooks per second for `duration` seconds, each due at an exact instant."""
    queues: list[asyncio.Queue[tuple[float, Outgoing] | None]] = [
        asyncio.Queue() for _ in range(connections)
    ]
    workers = [
        asyncio.create_task(connection(host, port, secret, q, results, prober)) for q in queues
    ]
    start = time.monotonic() + 0.1
    total = int(rate * duration)
    while results.sent < total:
        due_count = min(total, int((time.monotonic() - start) * rate) + 1)
        while results.sent < due_count:
            outgoing = next(stream)
            lane = zlib.crc32(outgoing.customer.encode()) % connections
            queues[lane].put_nowait((start + results.sent / rate, outgoing))
            results.sent += 1
        await asyncio.sleep(max(0.0, start + results.sent / rate - time.monotonic()))
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
