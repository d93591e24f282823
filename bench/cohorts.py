"""`make bench-cohorts`: a 12-month cohort query over 100k episodes on PostgreSQL, as a ratio to
a plain indexed `SELECT count(*)` over the same table, measured in the same run.

A throwaway PostgreSQL cluster (tests/support/postgres.py; BILLSTREAM_TEST_DATABASE_URL to use
another server) gets the read model's migration and 100k dunning/SCA episodes spread over 12
months (outcomes, durations, decline codes and plans drawn from a seeded generator). Timed,
best of --repeat runs each:
  baseline  SELECT count(*) FROM invoice_episodes WHERE kind = 'dunning' AND opened_at in the
            12 months (the index on kind, opened_at)
  cohorts   what GET /funnels/dunning?from=&to= runs (billstream/api/cohorts.py): the counts
            GROUP BY month and the median per month
  breakdown the same by decline code (GET /funnels/dunning?...&breakdown=decline_code)
Results: printed, and bench/results/cohorts.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from billstream.api.cohorts import CohortQuery
from billstream.api.episodes import EpisodeMessage
from billstream.api.store import Store
from billstream.processors.declines import DECLINE_CODES
from tests.support.postgres import create_database, drop_database, temporary_cluster

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cohorts.json"
START = int(datetime(2025, 12, 1, tzinfo=UTC).timestamp())
END = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
DAY = 86400


def episodes(count: int, seed: int = 20261202) -> list[EpisodeMessage]:
    rng = random.Random(seed)
    codes = sorted(DECLINE_CODES)[:12]
    found = []
    for n in range(count):
        kind = "dunning" if rng.random() < 0.7 else "sca"
        opened = rng.randrange(START, END)
        roll = rng.random()
        state = ("recovered" if kind == "dunning" else "completed") if roll < 0.65 else "lost"
        if roll > 0.95:
            state = "open"
        closed = None if state == "open" else opened + rng.randrange(60, 30 * DAY)
        found.append(
            EpisodeMessage(
                invoice_id=f"in_{n:08d}",
                kind=kind,  # type: ignore[arg-type]
                customer_id=f"cus_{rng.randrange(count // 3):08d}",
                subscription_id=f"sub_{n:08d}",
                state=state,  # type: ignore[arg-type]
                opened_at=opened,
                closed_at=closed,
                attempts=rng.randint(1, 4),
                decline_code=rng.choice(codes) if kind == "dunning" else None,
                plan=rng.choice(("PRO", "BUSINESS")),
                version=1,
            )
        )
    return found


def best(repeat: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(store: Store, repeat: int) -> dict[str, float]:
    count = text(
        "SELECT count(*) FROM invoice_episodes "
        "WHERE kind = 'dunning' AND opened_at >= :since AND opened_at < :until"
    )
    window = {"since": START, "until": END}

    def baseline() -> None:
        with store.reader.connect() as connection:
            connection.execute(count, window).scalar()

    year = CohortQuery("dunning", "month", START, END)
    by_code = CohortQuery("dunning", "month", START, END, "decline_code")
    return {
        "baseline_s": best(repeat, baseline),
        "cohorts_s": best(repeat, lambda: store.get_cohorts(year)),
        "breakdown_s": best(repeat, lambda: store.get_cohorts(by_code)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with temporary_cluster() as admin:
        url = create_database(admin)
        store = Store(url)
        try:
            store.migrate()
            data = episodes(args.episodes)
            for start in range(0, len(data), 5_000):
                store.apply([], data[start : start + 5_000])
            with store.engine.begin() as connection:
                connection.execute(text("ANALYZE invoice_episodes"))
            results = measure(store, args.repeat)
        finally:
            store.close()
            drop_database(admin, url)
    report = {
        "episodes": args.episodes,
        "months": 12,
        **{k: round(v * 1000, 2) for k, v in results.items()},
        "cohorts_vs_count": round(results["cohorts_s"] / results["baseline_s"], 2),
        "breakdown_vs_count": round(results["breakdown_s"] / results["baseline_s"], 2),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    report = {k.replace("_s", "_ms") if k.endswith("_s") else k: v for k, v in report.items()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"12-month cohorts over {args.episodes:,} episodes (PostgreSQL): "
        f"count(*) {report['baseline_ms']} ms, cohorts {report['cohorts_ms']} ms "
        f"= {report['cohorts_vs_count']}x, by decline code {report['breakdown_ms']} ms "
        f"= {report['breakdown_vs_count']}x"
    )


if __name__ == "__main__":
    main()
