"""Ingest's Prometheus metrics (DESIGN.md, "Metrics"), registered on the registry passed in.

Every endpoint (`POST /webhooks/stripe`, `…/thin`, `…/connect`) counts into the same families,
told apart by the `endpoint` label (`snapshot`, `thin`, `connect`): a dashboard's `sum()` keeps
meaning "every webhook", and each destination can still be watched on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Publishing normally takes a few ms; the tail up to the publish timeout matters for 503s.
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Endpoint(StrEnum):
    """Which destination a webhook came in through: the bounded `endpoint` label."""

    SNAPSHOT = "snapshot"
    THIN = "thin"
    CONNECT = "connect"  # the snapshot events of connected accounts (POST /webhooks/stripe/connect)


class Rejection(StrEnum):
    """Why a webhook was not queued: the bounded `reason` label and the body `status`."""

    INVALID_SIGNATURE = "invalid_signature"
    INVALID_PAYLOAD = "invalid_payload"
    # A snapshot event posted to the thin endpoint, or a thin notification to the snapshot one.
    WRONG_ENDPOINT = "wrong_endpoint"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    OVERLOADED = "overloaded"


PLATFORM_LABEL = "platform"
CONNECTED_LABEL = "connected"  # every connected account not in METRICS_ACCOUNT_LABELS


class AccountCounter:
    """`stripe_webhook_account_queued_total{account}`: platform, connected, or an id listed in
    METRICS_ACCOUNT_LABELS (bounded: no other account id becomes a label)."""

    def __init__(self, registry: CollectorRegistry, labelled_accounts: tuple[str, ...]) -> None:
        self.labelled_accounts = frozenset(labelled_accounts)
        self.counter = Counter(
            "stripe_webhook_account_queued",
            "Webhooks queued, by Stripe account: platform, connected, or an id of "
            "METRICS_ACCOUNT_LABELS (bounded: no other account id becomes a label)",
            ["account"],
            registry=registry,
        )
        self._children = {
            label: self.counter.labels(label)
            for label in (PLATFORM_LABEL, CONNECTED_LABEL, *sorted(self.labelled_accounts))
        }

    def queued_for(self, connected: str | None) -> None:
        if connected is None:
            label = PLATFORM_LABEL
        elif connected in self.labelled_accounts:
            label = connected
        else:
            label = CONNECTED_LABEL
        self._children[label].inc()


@dataclass(frozen=True)
class EndpointMetrics:
    """One endpoint's children, resolved once: labels() costs a lock and a dict lookup per call."""

    endpoint: Endpoint
    received: Counter
    queued: Counter
    invalid_signature: Counter
    publish_seconds: Histogram
    rejected: dict[Rejection, Counter]
    _ignored: Counter
    _accounts: AccountCounter

    def queued_for(self, connected: str | None) -> None:
        """Count a queued webhook: on its endpoint, and under its account's bounded label."""
        self.queued.inc()
        self._accounts.queued_for(connected)

    def ignored(self, type_label: str) -> Counter:
        return self._ignored.labels(self.endpoint.value, type_label)

    def reject(self, reason: Rejection) -> None:
        self.rejected[reason].inc()
        if reason is Rejection.INVALID_SIGNATURE:
            self.invalid_signature.inc()


class IngestMetrics:
    """The contract's counters and histogram; label values are bounded by construction."""

    def __init__(
        self, registry: CollectorRegistry, labelled_accounts: tuple[str, ...] = ()
    ) -> None:
        self.accounts = AccountCounter(registry, labelled_accounts)
        self.received = Counter(
            "stripe_webhook_received", "Webhook requests received", ["endpoint"], registry=registry
        )
        self.queued = Counter(
            "stripe_webhook_queued",
            "Webhooks acknowledged by Kafka (answered 200 queued)",
            ["endpoint"],
            registry=registry,
        )
        self.invalid_signature = Counter(
            "stripe_webhook_invalid_signature",
            "Webhooks whose Stripe-Signature did not verify",
            ["endpoint"],
            registry=registry,
        )
        self.ignored = Counter(
            "stripe_webhook_ignored",
            "Verified webhooks whose type is not allowed (answered 200 ignored)",
            ["endpoint", "type"],
            registry=registry,
        )
        self.rejected = Counter(
            "stripe_webhook_rejected",
            "Webhooks answered with an error status, by reason",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "stripe_webhook_publish_seconds",
            "Time from handing a record to the producer until the broker acknowledged or failed",
            ["endpoint"],
            buckets=PUBLISH_BUCKETS,
            registry=registry,
        )
        # Both endpoints together: they share one bound (INGEST_MAX_IN_FLIGHT).
        self.in_flight = Gauge(
            "stripe_webhook_in_flight",
            "Webhooks read and admitted, not yet answered (bounded by INGEST_MAX_IN_FLIGHT)",
            registry=registry,
        )
        self.loop_lag = Gauge(
            "stripe_webhook_loop_lag_seconds",
            "How late the event loop last ran a timer; beyond INGEST_MAX_LOOP_LAG_MS: 503s",
            registry=registry,
        )
        # Every endpoint's series exist from start-up (0), as every bounded label set does.
        self.endpoints = {endpoint: self._children(endpoint) for endpoint in Endpoint}

    def _children(self, endpoint: Endpoint) -> EndpointMetrics:
        name = endpoint.value
        return EndpointMetrics(
            endpoint=endpoint,
            received=self.received.labels(name),
            queued=self.queued.labels(name),
            invalid_signature=self.invalid_signature.labels(name),
            publish_seconds=self.publish_seconds.labels(name),
            rejected={reason: self.rejected.labels(name, reason.value) for reason in Rejection},
            _ignored=self.ignored,
            _accounts=self.accounts,
        )

    def of(self, endpoint: Endpoint) -> EndpointMetrics:
        return self.endpoints[endpoint]
