"""Dunning and SCA cohorts: episodes grouped by the period they opened, with their outcomes.

A cohort is counted where the payment failed (or needed 3-D Secure), not where it recovered:
"of October's failures, how many recovered within 7 days" is one row of October. Counts come
from one GROUP BY over `invoice_episodes` (indexed on kind, opened_at); the median time to
recover is PostgreSQL's `percentile_cont`, or computed here from the durations on SQLite,
which has no percentile aggregate.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, Select, and_, case, func, literal_column, select

from billstream.api.models import invoice_episodes as episodes

WITHIN_DAYS = (1, 3, 7, 14, 30)
PERIODS = ("month", "week")
BREAKDOWNS = ("decline_code", "plan")
# The state that ends an episode well, per kind (processors/episodes.py).
SUCCESS = {"dunning": "recovered", "sca": "completed"}


@dataclass(frozen=True)
class CohortQuery:
    kind: str
    period: str = "month"
    since: int | None = None  # opened at or after
    until: int | None = None  # opened before
    breakdown: str | None = None


def _filters(query: CohortQuery) -> list[Any]:
    where = [episodes.c.kind == query.kind]
    if query.since is not None:
        where.append(episodes.c.opened_at >= query.since)
    if query.until is not None:
        where.append(episodes.c.opened_at < query.until)
    return where


def _groups(query: CohortQuery) -> list[Any]:
    period = episodes.c.opened_month if query.period == "month" else episodes.c.opened_week
    groups = [period.label("cohort")]
    if query.breakdown is not None:
        groups.append(episodes.c[query.breakdown].label(query.breakdown))
    return groups


def counts_statement(query: CohortQuery) -> Select[Any]:
    """Per cohort (and breakdown): entered, succeeded within each of WITHIN_DAYS, lost, open."""
    success = episodes.c.state == SUCCESS[query.kind]
    took = episodes.c.closed_at - episodes.c.opened_at
    columns: list[Any] = [func.count().label("entered")]
    columns.append(func.sum(case((success, 1), else_=0)).label("succeeded"))
    for days in WITHIN_DAYS:
        within = and_(success, took <= days * 86400)
        columns.append(func.sum(case((within, 1), else_=0)).label(f"within_{days}d"))
    columns.append(func.sum(case((episodes.c.state == "lost", 1), else_=0)).label("lost"))
    columns.append(func.sum(case((episodes.c.state == "open", 1), else_=0)).label("open"))
    groups = _groups(query)
    return (
        select(*groups, *columns)
        .where(*_filters(query))
        .group_by(*(literal_column(g.name) for g in groups))
        .order_by(*(literal_column(g.name) for g in groups))
    )


def medians_statement(query: CohortQuery) -> Select[Any]:
    """PostgreSQL: the median seconds to success per cohort (and breakdown)."""
    took = (episodes.c.closed_at - episodes.c.opened_at).cast(Integer)
    median = func.percentile_cont(0.5).within_group(took)
    groups = _groups(query)
    return (
        select(*groups, median.label("median"))
        .where(*_filters(query), episodes.c.state == SUCCESS[query.kind])
        .group_by(*(literal_column(g.name) for g in groups))
    )


def durations_statement(query: CohortQuery) -> Select[Any]:
    """SQLite: every success's seconds, per cohort (and breakdown), for the median here."""
    groups = _groups(query)
    took = (episodes.c.closed_at - episodes.c.opened_at).label("took")
    return select(*groups, took).where(*_filters(query), episodes.c.state == SUCCESS[query.kind])


def cohorts(connection: Connection, query: CohortQuery) -> list[dict[str, Any]]:
    """The cohort rows of the API (docs/api.md, "Cohorts")."""
    width = 2 if query.breakdown is not None else 1
    rows = connection.execute(counts_statement(query)).all()
    if connection.dialect.name == "postgresql":
        found = connection.execute(medians_statement(query)).all()
        medians = {tuple(row[:width]): row[width] for row in found}
    else:
        taken: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for row in connection.execute(durations_statement(query)):
            taken[tuple(row[:width])].append(row[width])
        medians = {key: statistics.median(values) for key, values in taken.items()}
    return [_row(query, dict(row._mapping), medians.get(tuple(row[:width]))) for row in rows]


def _row(query: CohortQuery, row: Mapping[str, Any], median: Any) -> dict[str, Any]:
    success = SUCCESS[query.kind]
    body: dict[str, Any] = {"cohort": row["cohort"]}
    if query.breakdown is not None:
        body[query.breakdown] = row[query.breakdown]
    body["entered"] = int(row["entered"])
    body[success] = int(row["succeeded"] or 0)
    body[f"{success}_within"] = {f"{d}d": int(row[f"within_{d}d"] or 0) for d in WITHIN_DAYS}
    body["lost"] = int(row["lost"] or 0)
    body["open"] = int(row["open"] or 0)
    body[f"median_seconds_to_{'recover' if query.kind == 'dunning' else 'complete'}"] = (
        None if median is None else float(median)
    )
    return body
