"""Episodes in the read model and the cohorts counted from them, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from billstream.api.app import create_app
from billstream.api.cohorts import CohortQuery
from billstream.api.episodes import EpisodeMessage
from billstream.api.state import MalformedMessage
from billstream.api.store import Store
from tests.support.children import TEST_API_TOKEN
from tests.support.settings import SettingsFactory

DAY = 86400
OCT = 1_790_812_800  # 2026-10-01T00:00:00Z
NOV = 1_793_491_200  # 2026-11-01T00:00:00Z


def episode(invoice: str, kind: str = "dunning", **fields: Any) -> EpisodeMessage:
    value: dict[str, Any] = {
        "invoice_id": invoice,
        "kind": kind,
        "customer_id": f"cus_{invoice}",
        "subscription_id": "sub_1",
        "state": "open",
        "opened_at": OCT,
        "closed_at": None,
        "attempts": 1,
        "decline_code": None,
        "plan": "PRO",
        "version": 1,
    }
    value.update(fields)
    return EpisodeMessage.model_validate(value)


def october_and_november(store: Store) -> None:
    store.apply(
        [],
        [
            # October: one recovered within a day, one within 10 days, one lost, one open.
            episode(
                "in_1", state="recovered", closed_at=OCT + 3600, decline_code="insufficient_funds"
            ),
            episode("in_2", state="recovered", opened_at=OCT + DAY, closed_at=OCT + 11 * DAY),
            episode("in_3", state="lost", opened_at=OCT + 2 * DAY, closed_at=OCT + 20 * DAY),
            episode("in_4", opened_at=OCT + 3 * DAY, decline_code="insufficient_funds"),
            # November; and an SCA episode, which never counts as dunning.
            episode("in_5", state="recovered", opened_at=NOV, closed_at=NOV + 2 * DAY),
            episode("in_1", kind="sca", state="completed", closed_at=OCT + 60),
        ],
    )


def test_cohorts_count_by_the_month_the_episode_opened(store: Store) -> None:
    october_and_november(store)
    october, november = store.get_cohorts(CohortQuery("dunning"))
    assert october == {
        "cohort": "2026-10",
        "entered": 4,
        "recovered": 2,
        "recovered_within": {"1d": 1, "3d": 1, "7d": 1, "14d": 2, "30d": 2},
        "lost": 1,
        "open": 1,
        "median_seconds_to_recover": (3600 + 10 * DAY) / 2,
    }
    assert (november["cohort"], november["entered"], november["recovered_within"]["3d"]) == (
        "2026-11",
        1,
        1,
    )
    (sca,) = store.get_cohorts(CohortQuery("sca"))
    assert (sca["completed"], sca["median_seconds_to_complete"]) == (1, 60.0)


def test_window_week_and_breakdowns(store: Store) -> None:
    october_and_november(store)
    only_october = store.get_cohorts(CohortQuery("dunning", since=OCT, until=NOV))
    assert [row["cohort"] for row in only_october] == ["2026-10"]
    weeks = store.get_cohorts(CohortQuery("dunning", period="week"))
    # 2026-10-01 is a Thursday: its week began on Monday 2026-09-28.
    assert [(row["cohort"], row["entered"]) for row in weeks] == [
        ("2026-09-28", 4),
        ("2026-10-26", 1),
    ]
    by_code = store.get_cohorts(CohortQuery("dunning", breakdown="decline_code", until=NOV))
    counts = {row["decline_code"]: row["entered"] for row in by_code}
    assert counts == {None: 2, "insufficient_funds": 2}


def test_an_older_version_of_an_episode_never_overwrites_a_newer(store: Store) -> None:
    store.apply([], [episode("in_1", state="recovered", closed_at=OCT + 60, version=3)])
    store.apply([], [episode("in_1", version=2), episode("in_1", version=1)])
    (stored,) = store.get_episodes()
    assert (stored["state"], stored["version"]) == ("recovered", 3)


def test_an_episode_record_keyed_otherwise_is_malformed() -> None:
    from billstream.api.episodes import decode_episode

    value = episode("in_1").model_dump_json().encode()
    assert decode_episode(b"in_1:dunning", value) == episode("in_1")
    with pytest.raises(MalformedMessage):
        decode_episode(b"in_1", value)
    with pytest.raises(MalformedMessage):
        decode_episode(b"in_1:dunning", b'{"invoice_id": "in_1"}')


async def test_funnel_endpoints(
    aiohttp_client: AiohttpClient, make_settings: SettingsFactory, sqlite_store: Store
) -> None:
    october_and_november(sqlite_store)
    auth = {"Authorization": f"Bearer {TEST_API_TOKEN}"}
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(make_settings(), sqlite_store), headers=auth
    )
    response = await client.get(
        "/funnels/dunning?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z"
    )
    body = await response.json()
    assert response.status == 200, body
    assert (body["kind"], body["cohort"], body["from"], body["to"]) == (
        "dunning",
        "month",
        OCT,
        NOV,
    )
    assert [row["entered"] for row in body["cohorts"]] == [4]
    sca = await (await client.get("/funnels/sca?cohort=week&breakdown=plan")).json()
    assert sca["cohorts"][0]["plan"] == "PRO"
    for query, parameter in [
        ("cohort=day", "cohort"),
        ("breakdown=x", "breakdown"),
        ("from=2&to=1", "to"),
    ]:
        bad = await client.get(f"/funnels/dunning?{query}")
        assert bad.status == 400
        assert (await bad.json())["parameter"] == parameter
    assert (await client.get("/funnels/other")).status == 404
