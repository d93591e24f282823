"""The resolver's series exist at 0 from start-up, and the alert on health events reads one."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from billstream.resolver.metrics import ResolverMetrics
from billstream.resolver.resolve import RESULTS

ALERTS = Path(__file__).resolve().parents[3] / "prometheus" / "alerts.yml"


def exported(metrics: ResolverMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def test_every_result_is_exported_at_zero() -> None:
    metrics = ResolverMetrics.create()
    results = exported(metrics, "billstream_resolver_requests_total")
    assert results == {(("result", result),): 0.0 for result in RESULTS}


def test_the_event_generation_failure_alert_reads_a_series_the_resolver_exports() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    [expr] = [
        rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "StripeEventGenerationFailure"
    ]
    match = re.search(r'(billstream_stripe_health_events_total)\{type="([^"]+)"\}', expr)
    assert match is not None
    health = exported(ResolverMetrics.create(), match.group(1))
    assert health[(("type", match.group(2)),)] == 0.0
    assert (("type", "other"),) in health
