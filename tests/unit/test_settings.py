"""The settings object: contract defaults, parsing, and one-line errors naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from billstream.settings import Settings, describe_error


def settings_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Settings from exactly `env`: variables of the surrounding shell are removed first."""
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(monkeypatch)
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.stripe_webhook_tolerance == 300
    assert settings.stripe_webhook_max_body == 1_048_576
    assert settings.stripe_webhook_allowed_events == (
        "checkout.session.*",
        "customer.subscription.*",
        "invoice.*",
        "customer.*",
        "subscription_schedule.*",
        "entitlements.active_entitlement_summary.updated",
        "payment_intent.payment_failed",
        "charge.failed",
        "price.*",
        "product.*",
    )
    assert settings.stripe_automatic_tax_enabled is False
    assert settings.billing_catalog_refresh_seconds == 300
    assert settings.billing_default_plan == "FREE"
    assert settings.billing_plan_order == ("FREE", "PRO", "BUSINESS")
    assert settings.database_url == "sqlite:///var/billstream.db"
    assert (settings.ingest_port, settings.worker_web_port, settings.api_port) == (8000, 6066, 8080)
    assert (settings.resolver_port, settings.resolver_host) == (8070, "127.0.0.1")
    assert settings.stripe_api_rate == 20
    loopback = ("127.0.0.1", "127.0.0.1", "127.0.0.1")
    assert (settings.ingest_host, settings.worker_web_host, settings.api_host) == loopback
    auth = (settings.api_tokens, settings.api_auth, settings.api_metrics_auth)
    assert auth == ((), "token", False)
    # Batching (docs/deployment.md): at most ~100 ms added to visibility by default.
    assert (settings.ingest_linger_ms, settings.worker_linger_ms) == (5, 20)
    assert (settings.worker_fetch_wait_ms, settings.api_fetch_wait_ms) == (25, 50)
    assert settings.worker_fetch_min_bytes == settings.api_fetch_min_bytes == 256 * 1024


def test_lists_and_maps_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(
        monkeypatch,
        STRIPE_WEBHOOK_SECRETS="whsec_old, whsec_new",
        BILLING_PLAN_MAP="pro_monthly=PRO, price_123=BUSINESS",
        STRIPE_WEBHOOK_ALLOWED_EVENTS="invoice.paid,customer.subscription.*",
    )
    assert settings.webhook_secret_values() == ("whsec_old", "whsec_new")
    assert settings.billing_plan_map == {"pro_monthly": "PRO", "price_123": "BUSINESS"}
    assert settings.stripe_webhook_allowed_events == ("invoice.paid", "customer.subscription.*")


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(monkeypatch, STRIPE_WEBHOOK_SECRETS="whsec_topsecret")
    assert "whsec_topsecret" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "BILLING_PLAN_MAP",
            "pro_monthly",
            "BILLING_PLAN_MAP: entry 'pro_monthly' must be key=PLAN",
        ),
        (
            "STRIPE_WEBHOOK_TOLERANCE",
            "soon",
            "STRIPE_WEBHOOK_TOLERANCE: Input should be a valid integer",
        ),
        (
            "STRIPE_WEBHOOK_SECRETS",
            "sk_live_x",
            "STRIPE_WEBHOOK_SECRETS: every secret must start with 'whsec_'",
        ),
        ("STRIPE_WEBHOOK_ALLOWED_EVENTS", "inv*ice.paid", "STRIPE_WEBHOOK_ALLOWED_EVENTS: pattern"),
        ("BILLING_PLAN_ORDER", "FREE,PRO,FREE", "BILLING_PLAN_ORDER: plans must be unique"),
        (
            "BILLING_DEFAULT_PLAN",
            "GOLD",
            "BILLING_DEFAULT_PLAN 'GOLD' is not in BILLING_PLAN_ORDER",
        ),
        ("INGEST_PORT", "70000", "INGEST_PORT: Input should be less than or equal to 65535"),
    ],
)
def test_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_error(caught.value).startswith(expected)


def test_plan_map_values_must_be_known_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_PLAN_MAP", "gold_monthly=GOLD")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "['GOLD']" in describe_error(caught.value)


def test_the_cli_stops_with_one_line_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "billstream.cli", "topics"],
        env={"BILLING_PLAN_MAP": "pro_monthly", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "billstream: invalid configuration: BILLING_PLAN_MAP: entry 'pro_monthly' must be key=PLAN"
    ]
