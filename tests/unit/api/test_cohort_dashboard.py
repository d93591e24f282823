"""Every SQL query of the "Dunning cohorts" dashboard, run on a real PostgreSQL read model after
a simulated history, gives the numbers the reducer's own episodes give (and the api agrees).

The history is the simulator's (pre-basil shapes, so failed payments name their invoice and
carry decline codes); the reducer folds it, its billing.invoice-episodes records are stored as
the api's consumer stores them, and each panel's numbers are recomputed here from the records.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from itertools import islice
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from billstream.api.cohorts import CohortQuery
from billstream.api.episodes import EpisodeMessage
from billstream.api.store import Store
from billstream.processors.effects import EpisodeChanged
from billstream.processors.reducer import ReducerConfig, apply
from billstream.simulate import events
from billstream.simulate.catalog import PRICES
from billstream.simulate.traffic import TrafficConfig, traffic
from billstream.tables.state import CustomerState
from tests.support.dashboards import SqlQuery, sql_queries

pytestmark = pytest.mark.postgres

START = 1_793_491_200  # 2026-11-01: the stories end in the 30 days before
DAY = 86400
SUCCESS = {"dunning": "recovered", "sca": "completed"}


def simulated_episodes(deliveries: int = 6_000) -> list[dict[str, Any]]:
    """The latest record of every episode the reducer emitted for a simulated history."""
    config = ReducerConfig(
        plan_map={price.lookup_key or price.id: price.plan for price in PRICES},
        plan_order=("FREE", "PRO", "BUSINESS"),
    )
    states: dict[str, CustomerState] = {}
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    stream = traffic(TrafficConfig(seed=7, start=START, api_version=events.LEGACY_API))
    for delivery in islice(stream, deliveries):
        if delivery.kind not in ("event", "duplicate") or delivery.customer_id is None:
            continue
        event = orjson.loads(delivery.body)
        state, effects = apply(states.get(delivery.customer_id), event, config)
        states[delivery.customer_id] = state
        for effect in effects:
            if isinstance(effect, EpisodeChanged):
                record = effect.episode
                latest[record["invoice_id"], record["kind"]] = record
    return list(latest.values())


@pytest.fixture(scope="module")
def history() -> list[dict[str, Any]]:
    found = simulated_episodes()
    kinds = Counter((e["kind"], e["state"]) for e in found)
    # The history must exercise every panel: both kinds, each outcome, decline codes.
    for outcome in [("dunning", "recovered"), ("dunning", "lost"), ("sca", "completed")]:
        assert kinds[outcome], kinds
    assert kinds["sca", "lost"], kinds
    assert any(e["decline_code"] for e in found)
    return found


@pytest.fixture
def read_model(postgres_url: str, history: list[dict[str, Any]]) -> Iterator[Store]:
    store = Store(postgres_url)
    store.migrate()
    store.apply([], [EpisodeMessage.model_validate(e) for e in history])
    yield store
    store.close()


def month(timestamp: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m")


def expected_cohorts(history: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    success = SUCCESS[kind]
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: Counter())
    taken: dict[str, list[int]] = defaultdict(list)
    for e in history:
        if e["kind"] != kind:
            continue
        row = rows[month(e["opened_at"])]
        row["entered"] += 1
        row[e["state"]] += 1
        if e["state"] == success:
            took = e["closed_at"] - e["opened_at"]
            taken[month(e["opened_at"])].append(took)
            for days in (1, 3, 7, 14, 30):
                row[f"{success} ≤{days}d"] += took <= days * DAY
    return {
        cohort: {
            "entered": row["entered"],
            **{f"{success} ≤{d}d": row[f"{success} ≤{d}d"] for d in (1, 3, 7, 14, 30)},
            "lost": row["lost"],
            "open": row["open"],
            "median seconds": statistics.median(taken[cohort]) if taken[cohort] else None,
        }
        for cohort, row in rows.items()
    }


def run(store: Store, query: SqlQuery) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        result = connection.execute(text(query.bound(0, 2**62)))
        return [
            {k: float(v) if isinstance(v, Decimal) else v for k, v in row._mapping.items()}
            for row in result
        ]


def panel(title_start: str) -> SqlQuery:
    [found] = [q for q in sql_queries() if q.panel.startswith(title_start)]
    return found


@pytest.mark.parametrize(
    ("title", "kind"), [("Dunning cohorts", "dunning"), ("SCA cohorts", "sca")]
)
def test_cohort_tables(
    read_model: Store, history: list[dict[str, Any]], title: str, kind: str
) -> None:
    rows = run(read_model, panel(title))
    expected = expected_cohorts(history, kind)
    assert {row.pop("cohort"): row for row in rows} == expected
    # The api's /funnels answer is the same numbers.
    api = {r["cohort"]: r for r in read_model.get_cohorts(CohortQuery(kind))}
    assert {c: r["entered"] for c, r in api.items()} == {
        c: r["entered"] for c, r in expected.items()
    }


@pytest.mark.parametrize(
    ("title", "kind", "days"),
    [("Recovered within 7 days", "dunning", 7), ("SCA completed", "sca", 1)],
)
def test_rate_panels(
    read_model: Store, history: list[dict[str, Any]], title: str, kind: str, days: int
) -> None:
    success = SUCCESS[kind]
    expected = expected_cohorts(history, kind)
    for row in run(read_model, panel(title)):
        cohort = expected[row["cohort"]]
        (rate,) = (v for k, v in row.items() if k != "cohort")
        assert rate == pytest.approx(100 * cohort[f"{success} ≤{days}d"] / cohort["entered"])


def test_decline_code_panel(read_model: Store, history: list[dict[str, Any]]) -> None:
    dunning = [e for e in history if e["kind"] == "dunning"]
    by_code = Counter(e["decline_code"] or "unknown" for e in dunning)
    rows = run(read_model, panel("Dunning by decline code"))
    assert {row["decline_code"]: row["entered"] for row in rows} == by_code
    for row in rows:
        of_code = [e for e in dunning if (e["decline_code"] or "unknown") == row["decline_code"]]
        assert row["recovered"] == sum(e["state"] == "recovered" for e in of_code)
        assert row["lost"] == sum(e["state"] == "lost" for e in of_code)


def test_every_sql_query_of_the_dashboard_is_checked() -> None:
    titles = {q.panel for q in sql_queries()}
    checked = (
        "Dunning cohorts",
        "SCA cohorts",
        "Recovered within 7",
        "SCA completed",
        "Dunning by",
    )
    assert all(any(t.startswith(c) for c in checked) for t in titles), titles
