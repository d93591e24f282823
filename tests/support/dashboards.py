"""Reading the shipped Grafana dashboards: their PromQL expressions and the metrics they name."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"
# Grafana's range macro, replaced by a concrete window when Prometheus evaluates an expression.
RANGE_MACRO = "$__range"
_METRIC = re.compile(r"\b((?:stripe|billstream)_[a-z0-9_]+|up)\b(?=\s*[{\[)]|\s*$|\s)")
_SERIES_SUFFIXES = ("_bucket", "_count", "_sum")


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"

    def metrics(self) -> set[str]:
        """Series names in the expression (`x_bucket` stays `x_bucket`)."""
        return set(_METRIC.findall(self.expr))

    def families(self) -> set[str]:
        """Metric family names, as exporters declare them in `# TYPE` lines."""
        return {family(metric) for metric in self.metrics()}

    def promql(self, window: str) -> str:
        return self.expr.replace(RANGE_MACRO, window)


def family(series: str) -> str:
    for suffix in _SERIES_SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def dashboards() -> dict[str, dict[str, object]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def queries() -> list[Query]:
    """Every PromQL target (the read-model board's SQL targets are `sql_queries`)."""
    found = []
    for name, board in dashboards().items():
        for panel in board["panels"]:  # type: ignore[attr-defined]
            for target in panel.get("targets", []):
                if "expr" in target:
                    found.append(Query(name, panel["title"], target["refId"], target["expr"]))
    return found


# Grafana's SQL time-range macro, replaced by a concrete window when the test runs the SQL.
EPOCH_FILTER = re.compile(r"\$__unixEpochFilter\((\w+)\)")


@dataclass(frozen=True)
class SqlQuery:
    dashboard: str
    panel: str
    sql: str

    def bound(self, since: int, until: int) -> str:
        """The SQL with Grafana's `$__unixEpochFilter(column)` for [since, until]."""
        return EPOCH_FILTER.sub(rf"\1 BETWEEN {since} AND {until}", self.sql)


def sql_queries() -> list[SqlQuery]:
    """Every raw SQL target (PostgreSQL data source: the read model)."""
    found = []
    for name, board in dashboards().items():
        for panel in board["panels"]:  # type: ignore[attr-defined]
            for target in panel.get("targets", []):
                if "rawSql" in target:
                    found.append(SqlQuery(name, panel["title"], target["rawSql"]))
    return found
