"""The resolver's Prometheus metrics; every bounded label value exported at 0 from start-up."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from billstream.processors.dlq import RESOLVER_REASONS
from billstream.resolver.plan import HEALTH_TYPES, OTHER
from billstream.resolver.resolve import RESULTS


@dataclass(frozen=True)
class ResolverMetrics:
    registry: CollectorRegistry
    requests: Counter
    health: Counter
    dead_letters: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ResolverMetrics:
        registry = registry if registry is not None else CollectorRegistry()
        requests = Counter(
            "billstream_resolver_requests",
            "stripe.thin-events records handled by the resolver, by result",
            ["result"],
            registry=registry,
        )
        health = Counter(
            "billstream_stripe_health_events",
            "Stripe health notifications (v2.core.health.*) received, by type",
            ["type"],
            registry=registry,
        )
        dead_letters = Counter(
            "billstream_dlq",
            "Records dead-lettered, by reason (the resolver's share)",
            ["reason"],
            registry=registry,
        )
        for result in RESULTS:
            requests.labels(result)
        for kind in (*HEALTH_TYPES, OTHER):
            health.labels(kind)
        for reason in RESOLVER_REASONS:
            dead_letters.labels(reason)
        return cls(registry, requests, health, dead_letters)
