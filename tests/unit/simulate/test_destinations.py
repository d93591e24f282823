"""`simulate --destination`: the same story as snapshot webhooks, thin notifications, or both."""

from __future__ import annotations

import dataclasses
import itertools

import orjson

from billstream.simulate.connect import connected_accounts, for_accounts
from billstream.simulate.thin import for_destination
from billstream.simulate.traffic import TrafficConfig, traffic

CONFIG = TrafficConfig(seed=7, start=1_767_225_600, customers=5, noise_ratio=0.05)


def test_thin_mode_sends_one_notification_per_event_naming_its_snapshot() -> None:
    snapshot = list(itertools.islice(traffic(CONFIG), 200))
    thin = list(for_destination(snapshot, "thin"))
    assert len(thin) == len(snapshot)
    for plain, note in zip(snapshot, thin, strict=True):
        if plain.kind in ("bad_signature", "bad_payload"):
            assert note == plain  # bad traffic stays on the snapshot endpoint
            continue
        body = orjson.loads(note.body)
        assert note.destination == "thin"
        assert body["object"] == "v2.core.event"
        assert body["snapshot_event"] == plain.event_id
        assert body["type"] == "v1." + plain.event_type
        assert note.event_body == plain.body  # what the fold applies


def test_both_sends_each_event_twice_snapshot_first() -> None:
    snapshot = list(itertools.islice(traffic(CONFIG), 100))
    both = list(for_destination(snapshot, "both"))
    events = sum(1 for d in snapshot if d.kind in ("event", "duplicate"))
    assert len(both) == len(snapshot) + events
    assert [d for d in both if d.destination == "snapshot"] == snapshot


def test_connect_accounts_tell_whole_customer_stories_in_one_account_each() -> None:
    many = dataclasses.replace(CONFIG, customers=30)
    platform = list(itertools.islice(traffic(many), 600))
    mixed = list(for_accounts(platform, 2))
    assert list(for_accounts(platform, 0)) == platform
    accounts: dict[str, set[str | None]] = {}
    for plain, sent in zip(platform, mixed, strict=True):
        if plain.kind in ("bad_signature", "bad_payload"):
            assert sent == plain  # bad traffic stays on the platform endpoint
            continue
        account = orjson.loads(sent.body).get("account")
        assert sent.destination == ("connect" if account else "snapshot")
        assert {**orjson.loads(sent.body), "account": None} == {
            **orjson.loads(plain.body),
            "account": None,
        }
        accounts.setdefault(str(plain.customer_id), set()).add(account)
    assert all(len(of_customer) == 1 for of_customer in accounts.values())
    assert set().union(*accounts.values()) == {None, *connected_accounts(2)}
