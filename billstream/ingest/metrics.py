"""Ingest's Prometheus metrics (DESIGN.md, "Metrics"), registered on the registry passed in."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Publishing normally takes a few ms; the tail up to the publish timeout matters for 503s.
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Rejection(StrEnum):
    """Why a webhook was not queued: the bounded `reason` label and the body `status`."""

    INVALID_SIGNATURE = "invalid_signature"
    INVALID_PAYLOAD = "invalid_payload"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    OVERLOADED = "overloaded"


PLATFORM_LABEL = "platform"
CONNECTED_LABEL = "connected"  # every connected account not in METRICS_ACCOUNT_LABELS


class IngestMetrics:
    """The contract's counters and histogram; label values are bounded by construction."""

    def __init__(
        self, registry: CollectorRegistry, labelled_accounts: tuple[str, ...] = ()
    ) -> None:
        self.labelled_accounts = frozenset(labelled_accounts)
        self.account_queued = Counter(
            "stripe_webhook_account_queued",
            "Webhooks queued, by Stripe account: platform, connected, or an id of "
            "METRICS_ACCOUNT_LABELS (bounded: no other account id becomes a label)",
            ["account"],
            registry=registry,
        )
        for label in (PLATFORM_LABEL, CONNECTED_LABEL, *sorted(self.labelled_accounts)):
            self.account_queued.labels(label)
        self.received = Counter(
            "stripe_webhook_received", "Webhook requests received", registry=registry
        )
        self.queued = Counter(
            "stripe_webhook_queued",
            "Webhooks acknowledged by Kafka (answered 200 queued)",
            registry=registry,
        )
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
        self.publish_seconds = Histogram(
            "stripe_webhook_publish_seconds",
            "Time from handing a record to the producer until the broker acknowledged or failed",
            buckets=PUBLISH_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "stripe_webhook_in_flight",
            "Webhooks read and admitted, not yet answered (bounded by INGEST_MAX_IN_FLIGHT)",
            registry=registry,
        )
        # Children resolved once: labels() costs a lock and a dict lookup per call.
        self._rejected = {reason: self.rejected.labels(reason.value) for reason in Rejection}

    def queued_for(self, connected: str | None) -> None:
        """Count a queued webhook under its account's bounded label."""
        if connected is None:
            label = PLATFORM_LABEL
        elif connected in self.labelled_accounts:
            label = connected
        else:
            label = CONNECTED_LABEL
        self.account_queued.labels(label).inc()

    def reject(self, reason: Rejection) -> None:
        self._rejected[reason].inc()
        if reason is Rejection.INVALID_SIGNATURE:
            self.invalid_signature.inc()
