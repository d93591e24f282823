"""The metrics every webhook updates are plain numbers: exposed exactly as prometheus_client's
own Counter and Histogram would expose them; label children are bounded."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from billstream.ingest.metrics import PUBLISH_BUCKETS, IngestMetrics
from tests.unit.ingest.support import sample

OBSERVATIONS = [0.0, 0.0004, 0.001, 0.0010001, 0.003, 0.0099, 0.3, 5.0, 10.0, 10.5, 99.0]


def exposition(registry: CollectorRegistry, prefix: str) -> list[str]:
    """The registry's text lines for `prefix` metrics, `_created` timestamps blanked."""
    lines = generate_latest(registry).decode().splitlines()
    return [
        re.sub(r"(_created(\{[^}]*\})?) \S+$", r"\1 T", line)
        for line in lines
        if prefix in line and "invalid_signature" not in line
    ]


def test_exposition_is_prometheus_clients() -> None:
    ours = CollectorRegistry()
    metrics = IngestMetrics(ours)
    reference = CollectorRegistry()
    received = Counter("stripe_webhook_received", "Webhook requests received", registry=reference)
    queued = Counter(
        "stripe_webhook_queued",
        "Webhooks acknowledged by Kafka (answered 200 queued)",
        registry=reference,
    )
    histogram = Histogram(
        "stripe_webhook_publish_seconds",
        "Time from handing a record to the producer until the broker acknowledged or failed",
        buckets=PUBLISH_BUCKETS,
        registry=reference,
    )
    for seconds in OBSERVATIONS:
        metrics.every.received += 1
        received.inc()
        metrics.every.observe_publish(seconds)
        histogram.observe(seconds)
    metrics.every.queued += 3
    queued.inc(3)
    for prefix in ("stripe_webhook_received", "stripe_webhook_queued", "stripe_webhook_publish"):
        assert exposition(ours, prefix) == exposition(reference, prefix)
    assert sample(ours, "stripe_webhook_publish_seconds_count") == len(OBSERVATIONS)


def test_names_are_registered_once() -> None:
    registry = CollectorRegistry()
    IngestMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter("stripe_webhook_received", "again", registry=registry)


def test_ignored_types_are_counted_with_bounded_labels_and_a_bounded_cache() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    for n in range(1_000):
        metrics.ignore(f"charge.succeeded.{n}" if n % 2 else "charge.succeeded")
        metrics.ignore(f"Not A Type {n}")
    assert sample(registry, "stripe_webhook_ignored_total", type="charge.succeeded") == 500
    assert sample(registry, "stripe_webhook_ignored_total", type="other") == 1_000
    assert len(metrics._ignored) <= 256
