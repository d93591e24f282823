"""API_TOKENS / API_AUTH: data routes need a bearer token, probes stay open, and the api never
starts open by accident."""

from __future__ import annotations

import hmac
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from billstream.api import auth
from billstream.api.app import create_app
from billstream.api.openapi import document
from billstream.api.store import Store
from tests.support.account_state import make_state
from tests.support.settings import SettingsFactory

Client = TestClient[Any, Any]
OLD = "old-token-0123456789abcdef"
NEW = "new-token-fedcba9876543210"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    sqlite_store.apply([make_state("cus_a", 1)])
    return sqlite_store


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, make_settings: SettingsFactory, store: Store
) -> Client:
    return await aiohttp_client(create_app(make_settings(api_tokens=f"{NEW},{OLD}"), store))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("not-a-configured-token-000"),
        bearer(OLD[:-1]),  # a prefix of a real token
        {"Authorization": f"Basic {OLD}"},  # right secret, wrong scheme
        {"Authorization": "Bearer"},
    ],
)
@pytest.mark.parametrize(
    "path", ["/accounts", "/accounts/cus_a", "/accounts/cus_a/transitions", "/no/such/route"]
)
async def test_data_routes_answer_401_with_a_bearer_challenge(
    client: Client, path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.content_type == "application/json"
    assert (await response.json())["error"] == "unauthorized"


@pytest.mark.parametrize("token", [OLD, NEW])
async def test_either_of_two_rotated_tokens_is_accepted(client: Client, token: str) -> None:
    response = await client.get("/accounts/cus_a", headers=bearer(token))
    assert response.status == 200
    assert (await response.json())["customer_id"] == "cus_a"
    scheme_case = await client.get("/accounts", headers={"Authorization": f"bearer {token}"})
    assert scheme_case.status == 200  # the scheme is case-insensitive (RFC 7235)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/metrics"])
async def test_probes_document_and_metrics_are_open_by_default(client: Client, path: str) -> None:
    assert (await client.get(path)).status == 200


async def test_metrics_need_the_token_with_api_metrics_auth(
    aiohttp_client: AiohttpClient, make_settings: SettingsFactory, store: Store
) -> None:
    settings = make_settings(api_tokens=NEW, api_metrics_auth=True)
    client = await aiohttp_client(create_app(settings, store))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=bearer(NEW))).status == 200
    assert (await client.get("/healthz")).status == 200
    served = await (await client.get("/openapi.json")).json()
    assert served["paths"]["/metrics"]["get"]["security"] == [{"bearer": []}]


async def test_api_auth_none_is_an_explicitly_open_api(
    aiohttp_client: AiohttpClient, make_settings: SettingsFactory, store: Store
) -> None:
    client = await aiohttp_client(create_app(make_settings(api_tokens="", api_auth="none"), store))
    assert (await client.get("/accounts/cus_a")).status == 200


def test_without_tokens_the_app_refuses_to_be_built(
    make_settings: SettingsFactory, store: Store
) -> None:
    with pytest.raises(auth.AuthNotConfigured, match="API_TOKENS"):
        create_app(make_settings(api_tokens=""), store)


def test_without_tokens_billstream_api_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "KAFKA_"))}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}", "KAFKA_BOOTSTRAP_SERVERS": "x:1"}
    result = subprocess.run(
        [sys.executable, "-m", "billstream.cli", "api"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "billstream: invalid configuration: API_TOKENS: required for the api "
        "(or set API_AUTH=none for an open API)"
    ]


def test_every_configured_token_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time: a match on the first token does not skip comparing the others."""
    calls: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    tokens = (b"a" * 20, b"b" * 20, b"c" * 20)
    assert auth.token_matches("Bearer " + "a" * 20, tokens)
    assert calls == list(tokens)


def test_tokens_are_secrets_with_a_minimum_length(make_settings: SettingsFactory) -> None:
    settings = make_settings(api_tokens=f" {NEW} , {OLD} ")
    assert settings.api_token_values() == (NEW, OLD)
    assert NEW not in repr(settings)
    assert NEW not in str(settings.model_dump())
    with pytest.raises(ValueError, match="at least 16 characters"):
        make_settings(api_tokens="short")


def test_openapi_declares_the_bearer_scheme() -> None:
    spec = document()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "one of API_TOKENS (unless the api runs with API_AUTH=none)",
    }
    assert spec["security"] == [{"bearer": []}]
    for path in ("/healthz", "/readyz", "/openapi.json", "/metrics"):
        assert spec["paths"][path]["get"]["security"] == []
    for path in ("/accounts", "/accounts/{customer_id}"):
        assert "security" not in spec["paths"][path]["get"]  # the document's default applies
        assert "401" in spec["paths"][path]["get"]["responses"]
