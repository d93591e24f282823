"""Every endpoint and every error path of the read API, over a real server and SQLite."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from sqlalchemy.exc import OperationalError

from billstream.api import cursor
from billstream.api.app import create_app
from billstream.api.store import Store
from tests.support.account_state import make_state
from tests.support.children import TEST_API_TOKEN
from tests.support.settings import SettingsFactory

Client = TestClient[Any, Any]
AUTH = {"Authorization": f"Bearer {TEST_API_TOKEN}"}


@dataclass
class FakeConsumer:
    assigned: bool = True
    write_error: str | None = None


@pytest.fixture
def seeded(sqlite_store: Store) -> Store:
    sqlite_store.apply(
        [
            make_state("cus_a", 1, plan="FREE"),
            make_state("cus_a", 2, plan="PRO", updated_by_event_type="invoice.paid"),
            make_state("cus_b", 1, plan="PRO", payment_state="past_due", features=["api"]),
            make_state("cus_c", 1, plan="BUSINESS", features=[f"f{n:02d}" for n in range(11)]),
            make_state("cus_d", 1, plan="PRO", features=["api", "sso"]),
        ]
    )
    return sqlite_store


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, make_settings: SettingsFactory, seeded: Store
) -> Client:
    return await aiohttp_client(create_app(make_settings(), seeded), headers=AUTH)


async def get_json(client: Client, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def test_get_account(client: Client) -> None:
    body = await get_json(client, "/accounts/cus_a")
    assert (body["customer_id"], body["plan"], body["version"]) == ("cus_a", "PRO", 2)
    assert body["updated_by_event_type"] == "invoice.paid"


async def test_unknown_account_is_404(client: Client) -> None:
    body = await get_json(client, "/accounts/cus_nobody", 404)
    assert body["error"] == "not_found"
    assert "cus_nobody" in body["message"]
    await get_json(client, "/accounts/cus_nobody/transitions", 404)


@pytest.mark.parametrize("path", ["/accounts/cus%01x", "/accounts/" + "x" * 256])
async def test_bad_customer_id_is_400_naming_it(client: Client, path: str) -> None:
    assert (await get_json(client, path, 400))["parameter"] == "customer_id"
    assert (await get_json(client, path + "/transitions", 400))["parameter"] == "customer_id"


async def test_transitions_oldest_first_with_event_type(client: Client) -> None:
    body = await get_json(client, "/accounts/cus_a/transitions")
    assert body["customer_id"] == "cus_a"
    assert [item["version"] for item in body["items"]] == [1, 2]
    assert body["items"][1]["event_type"] == "invoice.paid"
    assert body["items"][1]["changes"] == {"plan": {"from": "FREE", "to": "PRO"}}


async def test_list_pages_through_everything_with_cursors(client: Client) -> None:
    first = await get_json(client, "/accounts?limit=3")
    assert [item["customer_id"] for item in first["items"]] == ["cus_a", "cus_b", "cus_c"]
    assert first["next"] == cursor.encode("cus_c")
    second = await get_json(client, f"/accounts?limit=3&after={first['next']}")
    assert [item["customer_id"] for item in second["items"]] == ["cus_d"]
    assert second["next"] is None


async def test_list_filters(client: Client) -> None:
    pro = await get_json(client, "/accounts?plan=PRO")
    assert [item["customer_id"] for item in pro["items"]] == ["cus_a", "cus_b", "cus_d"]
    due = await get_json(client, "/accounts?plan=PRO&payment_state=past_due")
    assert [item["customer_id"] for item in due["items"]] == ["cus_b"]
    assert (await get_json(client, "/accounts?payment_state=requires_action"))["items"] == []


async def test_accounts_with_a_feature_in_pages_and_with_the_other_filters(client: Client) -> None:
    first = await get_json(client, "/accounts?feature=api&limit=1")
    assert [item["customer_id"] for item in first["items"]] == ["cus_b"]
    assert first["items"][0]["features"] == ["api"]
    second = await get_json(client, f"/accounts?feature=api&limit=1&after={first['next']}")
    assert [item["customer_id"] for item in second["items"]] == ["cus_d"]
    assert second["next"] is None
    ok = await get_json(client, "/accounts?feature=api&payment_state=ok&plan=PRO")
    assert [item["customer_id"] for item in ok["items"]] == ["cus_d"]
    eleven = await get_json(client, "/accounts?feature=f10")
    assert [len(item["features"]) for item in eleven["items"]] == [11]
    assert (await get_json(client, "/accounts?feature=none"))["items"] == []


async def test_exactly_full_last_page_has_no_next(client: Client) -> None:
    body = await get_json(client, "/accounts?limit=4")
    assert len(body["items"]) == 4
    assert body["next"] is None


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=1e2", "limit"),
        ("limit=%D9%A3", "limit"),  # Arabic-Indic digit three: isdigit() but not ASCII
        ("limit=1&limit=2", "limit"),
        ("payment_state=broke", "payment_state"),
        ("plan=", "plan"),
        ("plan=" + "P" * 256, "plan"),
        ("plan=P%00", "plan"),
        ("feature=", "feature"),
        ("feature=" + "f" * 81, "feature"),
        ("feature=f%0A", "feature"),
        ("feature=a&feature=b", "feature"),
        ("after=%%%", "after"),
        ("after=bm90LWEtY3Vyc29y", "after"),  # base64 of "not-a-cursor"
        ("after=" + "A" * 401, "after"),
    ],
)
async def test_bad_query_values_are_400_naming_the_parameter(
    client: Client, query: str, parameter: str
) -> None:
    body = await get_json(client, f"/accounts?{query}", 400)
    assert body["error"] == "bad_request"
    assert body["parameter"] == parameter
    assert parameter in body["message"]


async def test_limit_bounds_are_accepted(client: Client) -> None:
    assert len((await get_json(client, "/accounts?limit=1"))["items"]) == 1
    assert len((await get_json(client, "/accounts?limit=500&unknown=1"))["items"]) == 4


async def test_unknown_path_and_method_are_json(client: Client) -> None:
    assert (await get_json(client, "/nope", 404))["error"] == "not_found"
    response = await client.post("/accounts")
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert (await response.json())["error"] == "method_not_allowed"


async def test_store_failure_is_503_not_500(
    client: Client, seeded: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    for name in ("get_account", "list_accounts", "get_transitions"):
        monkeypatch.setattr(seeded, name, broken)
    for path in ("/accounts/cus_a", "/accounts", "/accounts/cus_a/transitions"):
        assert (await get_json(client, path, 503))["error"] == "unavailable"
    assert (await client.get("/readyz")).status == 200  # ping still answers


async def test_healthz(client: Client) -> None:
    assert await get_json(client, "/healthz") == {"status": "ok"}


async def test_readyz_needs_schema_database_and_assigned_healthy_consumer(
    aiohttp_client: AiohttpClient, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path}/ready.db")
    consumer = FakeConsumer(assigned=False)
    client = await aiohttp_client(
        create_app(make_settings(), store, consumer=consumer), headers=AUTH
    )
    assert await get_json(client, "/readyz", 503) == {"status": "not_ready"}
    assert (await get_json(client, "/accounts", 503))["error"] == "unavailable"
    store.migrate()
    await get_json(client, "/readyz", 503)
    consumer.assigned = True
    assert await get_json(client, "/readyz") == {"status": "ready"}
    consumer.write_error = "OperationalError: database or disk is full"
    await get_json(client, "/readyz", 503)
    consumer.write_error = None
    store.close()
    (tmp_path / "ready.db").unlink()
    (tmp_path / "ready.db").mkdir()  # the database is gone and cannot be reopened
    await get_json(client, "/readyz", 503)


async def test_metrics_count_requests_by_route_template(client: Client) -> None:
    await client.get("/accounts/cus_a")
    await client.get("/accounts/cus_zz")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'billstream_api_requests_total{route="/accounts/{customer_id}",status="200"} 1.0' in text
    assert 'billstream_api_requests_total{route="/accounts/{customer_id}",status="404"} 1.0' in text
    assert "billstream_api_state_messages_total" in text


async def test_openapi_describes_every_route(client: Client) -> None:
    document = await get_json(client, "/openapi.json")
    served = {resource.canonical for resource in client.app.router.resources()}
    assert set(document["paths"]) == served
    assert set(document["components"]["schemas"]["Account"]["required"]) == set(
        (await get_json(client, "/accounts/cus_a")).keys()
    )


async def test_account_as_of_in_unix_seconds_and_rfc_3339(client: Client) -> None:
    # cus_a: FREE at 1767225601 (v1), PRO at 1767225602 (v2).
    old = await get_json(client, "/accounts/cus_a?as_of=1767225601")
    assert (old["plan"], old["version"], old["updated_by_event"]) == ("FREE", 1, "evt_cus_a_1")
    same = await get_json(client, "/accounts/cus_a?as_of=2026-01-01T00:00:01Z")
    assert same == old
    offset = await get_json(client, "/accounts/cus_a?as_of=2026-01-01T01:00:02%2B01:00")
    assert offset == await get_json(client, "/accounts/cus_a")
    before = await get_json(client, "/accounts/cus_a?as_of=1767225600", 404)
    assert before["error"] == "not_found"
    await get_json(client, "/accounts/cus_nobody?as_of=1767225600", 404)


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-01-01T00:00:00", "-5", "1.5", "99999999999999999999", ""]
)
async def test_bad_as_of_is_400_naming_it(client: Client, value: str) -> None:
    assert (await get_json(client, f"/accounts/cus_a?as_of={value}", 400))["parameter"] == "as_of"


async def test_transitions_page_with_cursor_and_window(client: Client) -> None:
    first = await get_json(client, "/accounts/cus_a/transitions?limit=1")
    assert [item["version"] for item in first["items"]] == [1]
    assert first["next"] == cursor.encode_version(1)
    second = await get_json(client, f"/accounts/cus_a/transitions?limit=1&after={first['next']}")
    assert [item["version"] for item in second["items"]] == [2]
    assert second["next"] is None
    window = await get_json(client, "/accounts/cus_a/transitions?since=1767225602")
    assert [item["version"] for item in window["items"]] == [2]
    until = await get_json(client, "/accounts/cus_a/transitions?until=2026-01-01T00:00:02Z")
    assert [item["version"] for item in until["items"]] == [1]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("after=" + cursor.encode("cus_a"), "after"),  # an accounts cursor is not a version one
        ("after=nonsense", "after"),
        ("since=soon", "since"),
        ("since=20&until=10", "until"),
        ("limit=0", "limit"),
    ],
)
async def test_bad_transition_parameters_are_400(
    client: Client, query: str, parameter: str
) -> None:
    body = await get_json(client, f"/accounts/cus_a/transitions?{query}", 400)
    assert body["parameter"] == parameter
