"""The drift audit's pure core: synthetic events, the expected accounts, the differences."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import orjson

from billstream.drift.audit import (
    SCHEDULE_UPDATED,
    by_field,
    differences,
    drift_event,
    expected_accounts,
)
from billstream.processors.config import ReducerConfig
from tests.support import billing_events as b
from tests.support import factories as f

CONFIG = ReducerConfig(
    plan_map=f.PLAN_MAP, default_plan="FREE", plan_order=("FREE", "PRO", "BUSINESS")
)


def test_the_same_object_is_the_same_event_id_and_a_change_is_a_new_one() -> None:
    sub = f.subscription(sub_id="sub_1", customer="cus_1")
    assert drift_event(sub, 100)["id"] == drift_event(sub, 200)["id"]
    assert drift_event(sub, 100)["id"] != drift_event({**sub, "status": "canceled"}, 100)["id"]


def test_stripe_pythons_decimals_are_encoded_as_stripe_sent_them() -> None:
    price = {**f.pro_monthly(), "unit_amount_decimal": Decimal("1999")}
    sub = f.subscription(sub_id="sub_1", customer="cus_1", prices=[price])
    as_sent = orjson.loads(orjson.dumps(sub, default=str))  # the decimal as Stripe's string
    assert as_sent["items"]["data"][0]["price"]["unit_amount_decimal"] == "1999"
    assert drift_event(sub, 100)["id"] == drift_event(as_sent, 100)["id"]


def test_expected_accounts_fold_every_subscription_of_a_customer() -> None:
    subs = [
        f.subscription(sub_id="sub_1", customer="cus_1", prices=[f.pro_monthly()]),
        f.subscription(sub_id="sub_2", customer="cus_1", prices=[f.business_monthly()]),
        f.subscription(sub_id="sub_3", customer="cus_2", status="canceled"),
    ]
    expected = expected_accounts([drift_event(s, 100) for s in subs], CONFIG)
    assert expected["cus_1"]["plan"] == "BUSINESS"
    assert expected["cus_2"]["plan"] == "FREE"


def test_a_connected_accounts_customer_is_its_own_account_beside_the_platforms() -> None:
    platform = f.subscription(sub_id="sub_1", customer="cus_1", prices=[f.pro_monthly()])
    connected = f.subscription(sub_id="sub_2", customer="cus_1", prices=[f.business_monthly()])
    events = [drift_event(platform, 100), drift_event(connected, 100, stripe_account="acct_1")]
    assert "account" not in events[0]
    assert events[1]["account"] == "acct_1"
    expected = expected_accounts(events, CONFIG)
    assert {key: (a["plan"], a.get("stripe_account")) for key, a in expected.items()} == {
        "cus_1": ("PRO", None),
        "acct_1/cus_1": ("BUSINESS", "acct_1"),
    }
    own = dataclasses.replace(CONFIG, platform_account="acct_1")  # acct_1 is the platform
    assert set(expected_accounts(events[1:], own)) == {"cus_1"}


def test_differences_are_by_field_and_an_unserved_customer_drifts_in_every_field() -> None:
    expected = {"cus_1": {"plan": "PRO", "subscription_id": "s", "subscription_status": "active",
                          "cancel_at_period_end": False, "pending_plan": None}}  # fmt: skip
    served = {"cus_1": {**expected["cus_1"], "plan": "FREE"}}
    (one,) = differences(expected, served)
    assert (one.field, one.stripe, one.served) == ("plan", "PRO", "FREE")
    assert by_field(differences(expected, {}))["pending_plan"] == 1
    assert differences(expected, expected) == []


def test_a_schedule_snapshot_gives_the_pending_plan_the_worker_serves() -> None:
    sub = f.subscription(customer="cus_1", prices=[f.business_monthly()], current_period_end=500)
    phases = [b.phase(f.business_monthly(), 0, 500), b.phase("price_legacy_business", 500)]
    downgrade = [b.phase(f.business_monthly(), 0, 500), b.phase(f.pro_monthly(), 500)]
    schedule = b.schedule(customer="cus_1", phases=downgrade)
    events = [drift_event(sub, 100), drift_event(schedule, 100, SCHEDULE_UPDATED)]
    assert events[1]["type"] == SCHEDULE_UPDATED
    assert expected_accounts(events, CONFIG)["cus_1"]["pending_plan"] == "PRO"

    released = b.schedule(customer="cus_1", phases=phases, status="released")
    events = [drift_event(sub, 100), drift_event(released, 100, SCHEDULE_UPDATED)]
    assert expected_accounts(events, CONFIG)["cus_1"]["pending_plan"] is None
