"""The api's Prometheus metrics, registered in one registry passed in (tests use a fresh one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# `result` of one account-state record: applied, stale, malformed, tombstone, rejected.
RESULTS = ("applied", "stale", "malformed", "tombstone", "rejected")


@dataclass(frozen=True)
class ApiMetrics:
    registry: CollectorRegistry
    messages: Counter
    write_errors: Counter
    batch_seconds: Histogram
    lag: Gauge
    requests: Counter
    request_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ApiMetrics:
        registry = registry if registry is not None else CollectorRegistry()
        metrics = cls(
            registry=registry,
            messages=Counter(
                "billstream_api_state_messages",
                "account-state records read, by result",
                ["result"],
                registry=registry,
            ),
            write_errors=Counter(
                "billstream_api_write_errors",
                "read-model transactions that failed (batch retried; offsets not committed)",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "billstream_api_batch_seconds",
                "time to apply one consumed batch in one transaction",
                registry=registry,
            ),
            lag=Gauge(
                "billstream_api_consumer_lag_messages",
                "account-state records not yet applied (sum over assigned partitions)",
                registry=registry,
            ),
            requests=Counter(
                "billstream_api_requests",
                "HTTP requests by route template and status",
                ["route", "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "billstream_api_request_seconds",
                "HTTP request duration by route template",
                ["route"],
                registry=registry,
            ),
        )
        for result in RESULTS:
            metrics.messages.labels(result)  # exported as 0 from the start
        return metrics
