"""Rebuild folds like the worker does; diff names every differing field and nothing else."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from billstream.processors.config import ReducerConfig
from billstream.processors.steps import apply_record
from billstream.routing import routing_key
from billstream.simulate.catalog import SIMULATOR_PLAN_MAP
from billstream.simulate.traffic import TrafficConfig, traffic
from billstream.tables.codec import decode_customer
from billstream.verify.diff import MISSING, Difference, diff_accounts
from billstream.verify.rebuild import Rebuild
from tests.support.settings import SettingsFactory


def simulated_bodies(count: int) -> list[bytes]:
    """Realistic deliveries (duplicates, reordering) that reach Kafka, plus one poison record."""
    config = TrafficConfig(seed=11, start=1_790_000_000, customers=15)
    kept = (d for d in traffic(config) if d.kind in ("event", "duplicate"))
    return [*(d.body for d in itertools.islice(kept, count)), b'{"id": "evt_bad"}']


def test_rebuild_matches_the_worker_path_record_by_record(make_settings: SettingsFactory) -> None:
    config = ReducerConfig.from_settings(make_settings(billing_plan_map=SIMULATOR_PLAN_MAP))
    rebuild = Rebuild(config)
    table: dict[bytes, bytes] = {}  # what the worker's table would hold
    for body in simulated_bodies(400):
        key = routing_key(orjson.loads(body)).encode()
        rebuild.fold(key, body)
        try:
            applied = apply_record(table.get(key), body, config)
        except ValueError:  # InvalidEvent: dead-lettered by the worker
            continue
        if applied.value is not None:
            table[key] = applied.value

    worker_views: dict[str, Any] = {}
    for key, value in table.items():
        state = decode_customer(value)
        view = state.account_view() if state is not None else None
        if view is not None:
            worker_views[key.decode()] = view
    assert rebuild.events == 401
    assert rebuild.dead_lettered == 1
    assert len(rebuild.accounts()) >= 15
    assert rebuild.accounts() == dict(sorted(worker_views.items()))


def test_a_record_without_key_is_skipped_like_the_worker_does() -> None:
    rebuild = Rebuild(ReducerConfig())
    rebuild.fold(None, b"{}")
    assert (rebuild.events, rebuild.dead_lettered, rebuild.accounts()) == (1, 1, {})


def account(customer: str, **fields: Any) -> dict[str, Any]:
    return {"customer_id": customer, "plan": "PRO", "version": 3, **fields}


def test_identical_sources_have_no_differences_and_extra_fields_are_ignored() -> None:
    rebuilt = {"cus_1": account("cus_1"), "cus_2": account("cus_2")}
    served = {k: {**v, "updated_by_event_type": "invoice.paid"} for k, v in rebuilt.items()}
    assert diff_accounts("api", rebuilt, served) == []


def test_every_differing_field_and_account_is_reported() -> None:
    rebuilt = {"cus_1": account("cus_1"), "cus_2": account("cus_2")}
    served = {
        "cus_1": account("cus_1", plan="BUSINESS", version=4),
        "cus_3": account("cus_3"),
    }

    differences = diff_accounts("billing.account-state", rebuilt, served)

    assert differences == [
        Difference("billing.account-state", "cus_1", "plan", "PRO", "BUSINESS"),
        Difference("billing.account-state", "cus_1", "version", 3, 4),
        Difference("billing.account-state", "cus_2", MISSING, rebuilt["cus_2"], None),
        Difference("billing.account-state", "cus_3", MISSING, None, served["cus_3"]),
    ]
    assert [str(d) for d in differences] == [
        'billing.account-state: cus_1 plan: rebuilt "PRO", served "BUSINESS"',
        "billing.account-state: cus_1 version: rebuilt 3, served 4",
        "billing.account-state: cus_2: rebuilt but not served",
        "billing.account-state: cus_3: served but not rebuilt",
    ]


def test_a_field_the_source_lacks_is_a_difference() -> None:
    (difference,) = diff_accounts(
        "api", {"c": account("c")}, {"c": {"customer_id": "c", "plan": "PRO"}}
    )
    assert str(difference) == "api: c version: rebuilt 3, served <missing>"
