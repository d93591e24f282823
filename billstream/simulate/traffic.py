"""The delivery stream: many customers' stories interleaved, with Stripe's delivery quirks
(duplicate deliveries, out-of-order pairs) and a little bad traffic. A pure function of its seed.
"""

# ruff: noqa: S311 -- a seeded, reproducible simulation, not cryptography

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import orjson

from billstream.simulate import events, scenarios
from billstream.simulate.story import DAY, Planned

Kind = Literal["event", "duplicate", "bad_signature", "bad_payload"]
Destination = Literal["snapshot", "thin", "connect"]
SWAP_WINDOW = 3600  # seconds between two events that may arrive in the wrong order
RETRY_WINDOW = 3 * DAY  # Stripe retries a delivery for up to three days


@dataclass(frozen=True)
class TrafficConfig:
    seed: int
    start: int  # stories end before this virtual time (epoch seconds)
    api_version: str = events.NEWEST_API
    customers: int = 100  # customers whose stories are being delivered at once
    duplicate_ratio: float = 0.03
    out_of_order_ratio: float = 0.02
    noise_ratio: float = 0.01


@dataclass(frozen=True)
class Delivery:
    """One POST: the body Stripe would send and what it stands for."""

    kind: Kind
    body: bytes
    event_id: str
    event_type: str
    customer_id: str | None  # deliveries of one customer are sent one after another
    created: int
    tag: str | None = None
    out_of_order: bool = False
    destination: Destination = "snapshot"
    # A thin delivery's snapshot event (the body the resolver fetches back by id), for the fold.
    snapshot: bytes | None = None

    @property
    def event_body(self) -> bytes:
        """The v1 event this delivery stands for."""
        return self.snapshot if self.snapshot is not None else self.body


def encode(event: events.Json) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_INDENT_2)  # Stripe pretty-prints its bodies


def story_deliveries(
    planned: list[Planned], rng: random.Random, config: TrafficConfig
) -> deque[Delivery]:
    """A story's deliveries, with Stripe's quirks kept realistic: only events created within
    the same hour trade places, and a retry arrives within the 3 days Stripe retries for."""
    firsts = [
        Delivery(
            "event",
            encode(p.event),
            p.event["id"],
            p.event["type"],
            p.customer_id,
            p.event["created"],
            p.tag,
        )
        for p in planned
    ]
    i = 0
    while i < len(firsts) - 1:
        near = firsts[i + 1].created - firsts[i].created <= SWAP_WINDOW
        if near and rng.random() < config.out_of_order_ratio:
            firsts[i], firsts[i + 1] = firsts[i + 1], replace(firsts[i], out_of_order=True)
            i += 1
        i += 1
    deliveries: list[Delivery] = []
    retries: list[Delivery] = []
    for delivery in firsts:
        due = [r for r in retries if r.created + RETRY_WINDOW < delivery.created]
        deliveries.extend(due)
        retries = [r for r in retries if r not in due]
        deliveries.append(delivery)
        if rng.random() < config.duplicate_ratio:
            retries.append(replace(delivery, kind="duplicate", out_of_order=False))
        if retries and rng.random() < 0.5:
            deliveries.append(retries.pop(0))
    deliveries.extend(retries)
    return deque(deliveries)


def anchored_story(rng: random.Random, config: TrafficConfig) -> list[Planned]:
    """A story whose last event falls within the 30 days before `config.start`."""
    seed = rng.getrandbits(64)
    probe = scenarios.customer_story(random.Random(seed), 0, config.api_version)
    span = probe.planned[-1].event["created"] - probe.planned[0].event["created"]
    begin = config.start - span - rng.randint(0, 30 * DAY)
    return scenarios.customer_story(random.Random(seed), begin, config.api_version).planned


def noise(rng: random.Random, config: TrafficConfig) -> Delivery:
    """Bad traffic every endpoint sees: a stale signing secret, or a body that is not an event."""
    event_id = f"evt_1noise{rng.getrandbits(48):012x}"
    if rng.random() < 0.5:
        obj = {"id": f"cus_1noise{rng.getrandbits(48):012x}", "object": "customer"}
        body = encode(events.event(event_id, "customer.updated", obj, config.start))
        return Delivery("bad_signature", body, event_id, "customer.updated", None, config.start)
    body = orjson.dumps({"id": event_id, "object": "event", "type": "invoice.paid"})
    return Delivery("bad_payload", body, event_id, "invoice.paid", None, config.start)


def traffic(config: TrafficConfig) -> Iterator[Delivery]:
    """Endless deliveries: `config.customers` stories at a time, a new one when one ends."""
    rng = random.Random(config.seed)
    active = [
        story_deliveries(anchored_story(rng, config), rng, config) for _ in range(config.customers)
    ]
    while True:
        if rng.random() < config.noise_ratio:
            yield noise(rng, config)
            continue
        slot = rng.randrange(len(active))
        yield active[slot].popleft()
        if not active[slot]:
            active[slot] = story_deliveries(anchored_story(rng, config), rng, config)


@dataclass(frozen=True)
class Outcome:
    """What ingest answered to one delivery, after retries."""

    delivery: Delivery
    status: str  # the body's `status` (queued, ignored, invalid_signature, ...), or http_NNN/error
    attempts: int
