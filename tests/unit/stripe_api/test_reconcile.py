"""Deferred downgrades: which accounts are due, and the requests stripe-mock validates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from billstream.processors.config import ReducerConfig
from billstream.processors.downgrade import DowngradeError, PriceResolver
from billstream.processors.metrics import ProcessorMetrics
from billstream.processors.reconcile import (
    due_downgrades,
    reconcile_once,
    register_reconcile_timer,
)
from billstream.settings import Settings
from billstream.stripe_client import StripeNotConfigured
from billstream.tables.codec import encode_state
from billstream.tables.state import AccountState, CustomerState
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import RecordingClient, Sent, client_for

NOW = 1_800_000_000
PLAN_MAP = "pro_monthly=PRO,free_monthly=FREE,price_free_legacy=FREE,price_biz=BUSINESS"


def account(customer: str, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "customer_id": customer,
        "plan": "PRO",
        "interval": "month",
        "subscription_id": f"sub_{customer}",
        "subscription_status": "active",
        "pending_plan": "FREE",
        "current_period_end": NOW + 600,
        "cancel_at_period_end": True,
        "deleted": False,
    }
    values.update(fields)
    return values


def counted(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(f"stripe_subscription_{name}_total") or 0.0


def updates(transport: RecordingClient) -> list[Sent]:
    return [s for s in transport.sent if s.method == "post"]


def test_due_are_live_accounts_whose_pending_plan_falls_due_soonest_first() -> None:
    accounts = [
        account("late", current_period_end=NOW + 900),
        account("soon", current_period_end=NOW + 60),
        account("overdue", current_period_end=NOW - 60),  # a missed window is still due
        account("later", current_period_end=NOW + 901),
        account("none", pending_plan=None),
        account("same", pending_plan="PRO"),
        account("gone", deleted=True),
        account("canceled", subscription_status="canceled"),
        account("nosub", subscription_id=None),
    ]

    due = due_downgrades(accounts, NOW, lookahead=900, limit=200)

    assert [d.customer_id for d in due] == ["overdue", "soon", "late"]
    assert [d.customer_id for d in due_downgrades(accounts, NOW, 900, limit=2)] == [
        "overdue",
        "soon",
    ]
    assert due[1].idempotency_key == f"billstream-downgrade-sub_soon-{NOW + 60}"


def test_prices_resolve_by_lookup_key_first_then_price_id(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    settings = make_settings(
        stripe_api_key="sk_test_r", stripe_api_base=stripe_mock, billing_plan_map=PLAN_MAP
    )
    transport = RecordingClient()
    resolver = PriceResolver(client_for(settings, transport), ReducerConfig.from_settings(settings))

    free = resolver.price_for("FREE", "month")
    assert resolver.price_for("FREE", "month") == free  # cached for the run
    assert resolver.price_for("BUSINESS", "month") == "price_biz"  # no lookup key: no request
    with pytest.raises(DowngradeError, match="no key"):
        resolver.price_for("ENTERPRISE", None)

    (lookup,) = transport.sent
    assert lookup.path == "/v1/prices"
    assert lookup.query["lookup_keys[0]"] == ["free_monthly"]
    assert lookup.query["active"] == ["true"]
    assert free.startswith("price_")  # stripe-mock's price, not the price-id fallback
    assert free != "price_free_legacy"


@pytest.fixture
def settings(make_settings: SettingsFactory, stripe_mock: str) -> Settings:
    return make_settings(
        stripe_api_key="sk_test_r",
        stripe_api_base=stripe_mock,
        billing_plan_map=PLAN_MAP,
        reconcile_cron_enabled=True,
    )


async def test_each_due_account_is_switched_with_one_idempotent_update(settings: Settings) -> None:
    transport = RecordingClient()
    registry = CollectorRegistry()
    accounts = [account("a"), account("b", current_period_end=NOW + 10)]

    report = await reconcile_once(
        client_for(settings, transport),
        accounts,
        ReducerConfig.from_settings(settings),
        ProcessorMetrics(registry),
        now=NOW,
        lookahead=900,
        limit=200,
    )

    assert report.applied == ["b", "a"]
    assert report.errors == {}
    sent = updates(transport)
    assert [s.path for s in sent] == ["/v1/subscriptions/sub_b", "/v1/subscriptions/sub_a"]
    assert [s.headers["Idempotency-Key"] for s in sent] == [
        f"billstream-downgrade-sub_b-{NOW + 10}",
        f"billstream-downgrade-sub_a-{NOW + 600}",
    ]
    form = sent[0].form
    assert form["proration_behavior"] == ["none"]
    assert form["cancel_at_period_end"] == ["false"]
    assert form["metadata[pending_plan]"] == [""]
    assert form["items[0][id]"][0].startswith("si_")  # the item of the retrieved subscription
    assert form["items[0][price]"][0].startswith("price_")
    assert counted(registry, "downgrade_applied") == 2
    assert counted(registry, "reconcile_run") == 1


async def test_a_retry_sends_the_same_key_so_stripe_never_applies_twice(settings: Settings) -> None:
    transport = RecordingClient()
    client = client_for(settings, transport)
    metrics = ProcessorMetrics(CollectorRegistry())
    config = ReducerConfig.from_settings(settings)

    for _ in range(2):  # the state has not caught up with the first update yet
        await reconcile_once(
            client, [account("a")], config, metrics, now=NOW, lookahead=900, limit=5
        )

    keys = {s.headers["Idempotency-Key"] for s in updates(transport)}
    assert len(updates(transport)) == 2
    assert keys == {f"billstream-downgrade-sub_a-{NOW + 600}"}


async def test_a_stripe_error_for_one_account_does_not_stop_the_batch(settings: Settings) -> None:
    transport = RecordingClient()
    registry = CollectorRegistry()
    accounts = [
        account("a", current_period_end=NOW + 1),
        account("bad", subscription_id="sub_x/y", current_period_end=NOW + 2),  # stripe-mock: 404
        account("c", current_period_end=NOW + 3),
    ]

    report = await reconcile_once(
        client_for(settings, transport),
        accounts,
        ReducerConfig.from_settings(settings),
        ProcessorMetrics(registry),
        now=NOW,
        lookahead=900,
        limit=200,
    )

    assert report.applied == ["a", "c"]
    assert list(report.errors) == ["bad"]
    assert "HTTP 404" in report.errors["bad"]
    assert counted(registry, "reconcile_error") == 1
    assert counted(registry, "downgrade_applied") == 2


async def test_an_unreachable_stripe_counts_every_account_as_an_error(
    make_settings: SettingsFactory, closed_port_url: str
) -> None:
    settings = make_settings(
        stripe_api_key="sk_test_r", stripe_api_base=closed_port_url, billing_plan_map=PLAN_MAP
    )
    registry = CollectorRegistry()

    report = await reconcile_once(
        client_for(settings, RecordingClient()),
        [account("a"), account("b")],
        ReducerConfig.from_settings(settings),
        ProcessorMetrics(registry),
        now=NOW,
        lookahead=900,
        limit=200,
    )

    assert report.applied == []
    assert all("cannot reach Stripe" in message for message in report.errors.values())
    assert counted(registry, "reconcile_error") == 2
    assert counted(registry, "reconcile_run") == 1


@dataclass
class TimerApp:
    """Records `app.timer(...)` registrations like Faust does, without running them."""

    timers: list[dict[str, Any]] = field(default_factory=list)

    def timer(self, **options: Any) -> Any:
        def register(fun: Any) -> Any:
            self.timers.append({**options, "fun": fun})
            return fun

        return register


def table_value(customer: str, **fields: Any) -> bytes:
    view = account(customer, **fields)
    del view["customer_id"]
    state = CustomerState(customer, account=AccountState(**view))
    return encode_state(state.to_dict())


async def test_the_timer_reads_the_table_and_reconciles_due_accounts(
    settings: Settings,
) -> None:
    app, transport = TimerApp(), RecordingClient()
    period_end = int(time.time()) + 300
    table = {
        b"cus_due": table_value("cus_due", current_period_end=period_end),
        b"cus_calm": table_value("cus_calm", pending_plan=None),
        b"cus_blank": encode_state(CustomerState("cus_blank").to_dict()),
    }

    run = register_reconcile_timer(
        app,
        settings,
        table,
        ProcessorMetrics(CollectorRegistry()),
        client=client_for(settings, transport),
    )

    assert run is not None
    (timer,) = app.timers
    assert timer["interval"] == 420.0
    assert timer["on_leader"] is False
    report = await run()
    assert report.applied == ["cus_due"]
    assert [s.path for s in updates(transport)] == ["/v1/subscriptions/sub_cus_due"]


def test_the_timer_is_off_unless_enabled_and_needs_a_key(make_settings: SettingsFactory) -> None:
    app = TimerApp()
    metrics = ProcessorMetrics(CollectorRegistry())

    assert register_reconcile_timer(app, make_settings(), {}, metrics) is None
    assert app.timers == []
    with pytest.raises(StripeNotConfigured):
        register_reconcile_timer(app, make_settings(reconcile_cron_enabled=True), {}, metrics)


async def test_a_connected_accounts_downgrade_goes_to_its_account(settings: Settings) -> None:
    """Its subscription and prices live in the connected account: every call names it."""
    transport = RecordingClient()
    connected = {**account("a"), "stripe_account": "acct_1"}

    report = await reconcile_once(
        client_for(settings, transport),
        [connected, account("b")],
        ReducerConfig.from_settings(settings),
        ProcessorMetrics(CollectorRegistry()),
        now=NOW,
        lookahead=900,
        limit=200,
    )

    assert sorted(report.applied) == ["a", "b"]
    by_path: dict[str, set[str | None]] = {}
    for sent in transport.sent:
        headers = {k.lower(): v for k, v in sent.headers.items()}
        by_path.setdefault(sent.path, set()).add(headers.get("stripe-account"))
    assert by_path["/v1/subscriptions/sub_a"] == {"acct_1"}
    assert by_path["/v1/subscriptions/sub_b"] == {None}
    assert by_path["/v1/prices"] == {"acct_1", None}  # each account's prices looked up there
