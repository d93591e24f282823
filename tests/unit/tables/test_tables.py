"""The per-customer table: its fast codec agrees with `to_dict`, and its declaration."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import faust
import orjson

from billstream.processors.reducer import apply
from billstream.processors.runtime.app import create_faust_app
from billstream.tables.codec import decode_customer, decode_state, encode_customer
from billstream.tables.state import CustomerState, SubscriptionState
from billstream.tables.tables import CUSTOMER_STATE_TABLE, customer_state_table
from tests.support.settings import SettingsFactory
from tests.support.workload import build_workload
from tests.unit.processors.support import CONFIG


def realistic_states() -> list[CustomerState]:
    """Every intermediate aggregate of 150 customer lives (episodes, tombstones, deletions)."""
    states = []
    for events in build_workload(150, seed=5).events.values():
        state = None
        for event in events:
            state, _ = apply(state, event, CONFIG)
            states.append(state)
    return states


def test_encode_customer_is_to_dict_as_json_and_round_trips() -> None:
    states = realistic_states()
    assert any(s.invoices for s in states)
    assert any(s.deleted for s in states)
    for state in states:
        value = encode_customer(state)
        assert decode_state(value) == state.to_dict()
        assert decode_customer(value) == state


def test_a_table_value_holds_no_more_memory_than_its_bytes() -> None:
    # The store keeps every value: orjson's output buffer slack would be kept with each one.
    states = realistic_states()[-200:]
    tracemalloc.start()
    try:
        values = [encode_customer(state) for state in states]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = sum(len(value) for value in values)
    assert held < size + 200 * 64  # each value's bytes and the bytes object's header


def test_a_customer_never_seen_has_no_state() -> None:
    assert decode_customer(None) is None


async def test_the_table_is_co_partitioned_raw_bytes_with_a_compacted_changelog(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(billstream_topic_partitions=6)
    app = create_faust_app(settings)
    app.loop = asyncio.get_running_loop()
    table = customer_state_table(app, settings.billstream_topic_partitions)
    assert isinstance(table, faust.Table)

    changelog = table.changelog_topic
    assert (
        changelog.get_topic_name()
        == f"{settings.billstream_app_id}-{CUSTOMER_STATE_TABLE}-changelog"
    )
    assert changelog.partitions == 6
    assert changelog.config is not None
    assert changelog.config["cleanup.policy"] == "compact"
    assert (table.key_serializer, table.value_serializer) == ("raw", "raw")


async def test_with_replication_3_faust_creates_the_changelog_with_3_replicas_and_min_isr_2(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(billstream_topic_replication=3)
    app = create_faust_app(settings)
    app.loop = asyncio.get_running_loop()
    changelog = customer_state_table(app, settings.billstream_topic_partitions).changelog_topic
    requests: list[dict[str, Any]] = []

    class RecordingProducer:
        async def create_topic(self, **request: Any) -> None:
            requests.append(request)

    async def producer() -> RecordingProducer:
        return RecordingProducer()

    changelog._get_producer = producer  # type: ignore[attr-defined]
    await changelog.declare()  # what Faust runs when the worker starts

    [request] = requests
    assert request["replication"] == 3
    assert request["config"]["min.insync.replicas"] == "2"
    assert request["config"]["cleanup.policy"] == "compact"


def test_a_value_stored_before_entitlements_existed_decodes_with_none_known() -> None:
    """Values in changelogs and stores written before `features` / `entitlements` were added."""
    old = (
        b'{"account":{"cancel_at_period_end":false,"current_period_end":null,"deleted":false,'
        b'"interval":null,"payment_state":"ok","pending_plan":null,"plan":"PRO",'
        b'"subscription_id":null,"subscription_status":null,"updated_at":5,'
        b'"updated_by_event":"evt_1","updated_by_event_type":"invoice.paid","version":3},'
        b'"customer_id":"cus_1","deleted":false,"invoices":[],"newest_created":5,'
        b'"schema":1,"seen":{"evt_1":5},"subscriptions":[]}'
    )
    state = decode_customer(old)
    assert state is not None
    assert state.entitlements is None
    assert state.account is not None
    assert state.account.features == ()
    assert state.account.version == 3
    assert encode_customer(state) == encode_customer(decode_customer(encode_customer(state)))  # type: ignore[arg-type]


def test_a_schema_1_subscription_decodes_without_tie_facts_and_re_encodes_as_schema_2() -> None:
    """Schema 2 added the subscriptions' same-second tie facts (processors/ordering.py)."""
    old = (
        b'{"account":null,"customer_id":"cus_1","deleted":false,"invoices":[],'
        b'"newest_created":5,"schema":1,"seen":{"evt_1":5},"subscriptions":[{'
        b'"cancel_at_period_end":false,"current_period_end":99,"deleted":false,"ended_at":null,'
        b'"id":"sub_1","interval":"month","last_event_created":5,"pending_plan":null,'
        b'"plan":"PRO","price":"pro_monthly","status":"active"}]}'
    )
    state = decode_customer(old)
    assert state is not None
    sub = state.subscriptions["sub_1"]
    assert (sub.status, sub.last_event_created, sub.plan) == ("active", 5, "PRO")
    assert (sub.applied_ids, sub.prior, sub.first, sub.refetched) == ((), (), False, False)
    encoded = encode_customer(state)
    assert orjson.loads(encoded)["schema"] == 2
    again = decode_customer(encoded)
    assert again is not None
    assert encode_customer(again) == encoded


def test_tie_facts_survive_the_codec() -> None:
    state = CustomerState("cus_1")
    state.subscriptions["sub_1"] = SubscriptionState(
        "sub_1",
        "past_due",
        "PRO",
        5,
        applied_ids=("evt_a", "evt_b"),
        prior=(("status", "active"), ("cancel_at_period_end", False)),
        first=True,
        refetched=True,
    )
    again = decode_customer(encode_customer(state))
    assert again is not None
    sub = again.subscriptions["sub_1"]
    assert sub.applied_ids == ("evt_a", "evt_b")
    assert sub.prior == (("status", "active"), ("cancel_at_period_end", False))
    assert (sub.first, sub.refetched) == (True, True)
    assert orjson.loads(encode_customer(state)) == state.to_dict()
