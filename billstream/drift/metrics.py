"""Metrics of the periodic recovery (`billstream drift-audit`), in one registry passed in.

Every labelled series exists at 0 from start-up, so an alert sees the first drift after a
restart; the one-off `billstream drift --metrics` fills a fresh registry and prints it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from billstream.drift.audit import FIELDS, by_field
from billstream.drift.auditor import Audit

# `job` of billstream_recovery_runs_total, and each run's `result`.
JOBS = ("drift_audit", "undelivered_recovery")
RESULTS = ("ok", "error")


@dataclass(frozen=True)
class RecoveryMetrics:
    registry: CollectorRegistry
    drift_accounts: Gauge
    drift_checked: Counter
    drift_healed: Counter
    audit_seconds: Gauge
    last_success: Gauge
    undelivered_recovered: Counter
    runs: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> RecoveryMetrics:
        registry = registry if registry is not None else CollectorRegistry()
        metrics = cls(
            registry=registry,
            drift_accounts=Gauge(
                "billstream_drift_accounts",
                "accounts the last completed drift audit found served unlike Stripe, by field",
                ["field"],
                registry=registry,
            ),
            drift_checked=Counter(
                "billstream_drift_checked",
                "customers compared with Stripe by drift audits",
                registry=registry,
            ),
            drift_healed=Counter(
                "billstream_drift_healed_events",
                "subscription objects published to stripe.events by drift heals (source: drift)",
                registry=registry,
            ),
            audit_seconds=Gauge(
                "billstream_drift_audit_duration_seconds",
                "how long the last completed drift audit took (listing, api read, heal)",
                registry=registry,
            ),
            last_success=Gauge(
                "billstream_drift_last_success_timestamp_seconds",
                "unix time the last drift audit completed (0: none yet)",
                registry=registry,
            ),
            undelivered_recovered=Counter(
                "billstream_undelivered_recovered",
                "undelivered events (delivery_success=false) published to stripe.events",
                registry=registry,
            ),
            runs=Counter(
                "billstream_recovery_runs",
                "periodic recovery runs, by job and result",
                ["job", "result"],
                registry=registry,
            ),
        )
        for field in FIELDS:
            metrics.drift_accounts.labels(field)
        for job in JOBS:
            for result in RESULTS:
                metrics.runs.labels(job, result)
        return metrics

    def observe_audit(self, audit: Audit, clock: Callable[[], float] = time.time) -> None:
        """One completed audit: the drift gauges are replaced, never summed."""
        counts = by_field(audit.found)
        for field in FIELDS:
            self.drift_accounts.labels(field).set(counts.get(field, 0))
        self.drift_checked.inc(audit.customers)
        self.drift_healed.inc(audit.healed_events)
        self.audit_seconds.set(audit.seconds)
        self.last_success.set(clock())
        self.runs.labels("drift_audit", "ok").inc()
