"""Ingest's Prometheus metrics (DESIGN.md, "Metrics"), registered on the registry passed in."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from billstream.ingest.event import type_label

# Publishing normally takes a few ms; the tail up to the publish timeout matters for 503s.
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_IGNORED_CACHE_MAX = 256  # distinct event types whose `type` label child is kept resolved


class Rejection(StrEnum):
    """Why a webhook was not queued: the bounded `reason` label and the body `status`."""

    INVALID_SIGNATURE = "invalid_signature"
    INVALID_PAYLOAD = "invalid_payload"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"


class _EveryWebhook:
    """`stripe_webhook_received_total`, `stripe_webhook_queued_total` and the
    `stripe_webhook_publish_seconds` histogram: the three every webhook updates.

    Plain numbers, exposed by this collector exactly as prometheus_client's Counter and
    Histogram expose theirs (same samples, `_created` included). Both the updates and
    `/metrics` run on the event loop thread, so they need none of the lock prometheus_client
    takes per update: ~0.3 µs per webhook instead of ~2.2 µs.
    """

    _LE = (*(floatToGoString(bound) for bound in PUBLISH_BUCKETS), "+Inf")  # type: ignore[no-untyped-call]

    def __init__(self) -> None:
        self.received = 0
        self.queued = 0
        self.publish_counts = [0] * len(self._LE)  # per bucket, not cumulative
        self.publish_sum = 0.0
        self._created = time.time()

    def observe_publish(self, seconds: float) -> None:
        self.publish_counts[bisect_left(PUBLISH_BUCKETS, seconds)] += 1  # le: bound >= value
        self.publish_sum += seconds

    def describe(self) -> Iterator[Metric]:
        return self._families(samples=False)

    def collect(self) -> Iterator[Metric]:
        return self._families(samples=True)

    def _families(self, samples: bool) -> Iterator[Metric]:
        created = self._created
        for name, documentation, value in (
            ("stripe_webhook_received", "Webhook requests received", self.received),
            (
                "stripe_webhook_queued",
                "Webhooks acknowledged by Kafka (answered 200 queued)",
                self.queued,
            ),
        ):
            if samples:
                yield CounterMetricFamily(name, documentation, value=value, created=created)
            else:
                yield CounterMetricFamily(name, documentation)
        name = "stripe_webhook_publish_seconds"
        histogram = Metric(
            name,
            "Time from handing a record to the producer until the broker acknowledged or failed",
            "histogram",
        )
        if samples:
            cumulative = 0
            for le, count in zip(self._LE, self.publish_counts, strict=True):
                cumulative += count
                histogram.add_sample(f"{name}_bucket", {"le": le}, cumulative)
            histogram.add_sample(f"{name}_count", {}, cumulative)
            histogram.add_sample(f"{name}_sum", {}, self.publish_sum)
            histogram.add_sample(f"{name}_created", {}, created)
        yield histogram


class IngestMetrics:
    """The contract's counters and histogram; label values are bounded by construction."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.every = _EveryWebhook()
        registry.register(self.every)
        self.invalid_signature = Counter(
            "stripe_webhook_invalid_signature",
            "Webhooks whose Stripe-Signature did not verify",
            registry=registry,
        )
        self.ignored = Counter(
            "stripe_webhook_ignored",
            "Verified webhooks whose type is not allowed (answered 200 ignored)",
            ["type"],
            registry=registry,
        )
        self.rejected = Counter(
            "stripe_webhook_rejected",
            "Webhooks answered with an error status, by reason",
            ["reason"],
            registry=registry,
        )
        # Children resolved once: labels() costs a lock and a dict lookup per call.
        self._rejected = {reason: self.rejected.labels(reason.value) for reason in Rejection}
        self._ignored: dict[str, Counter] = {}

    def reject(self, reason: Rejection) -> None:
        self._rejected[reason].inc()
        if reason is Rejection.INVALID_SIGNATURE:
            self.invalid_signature.inc()

    def ignore(self, event_type: str) -> None:
        """Count a verified event of a type that is not allowed (its label child cached)."""
        child = self._ignored.get(event_type)
        if child is None:
            child = self.ignored.labels(type_label(event_type))
            if len(self._ignored) < _IGNORED_CACHE_MAX:  # the raw type is the sender's: bounded
                self._ignored[event_type] = child
        child.inc()
