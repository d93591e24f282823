"""The read model on SQLite and on a real PostgreSQL: ordering, transitions, pages, filters."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from billstream.api.models import metadata
from billstream.api.store import IN_CHUNK, Store, engine_url
from tests.support.account_state import make_state


def test_migration_builds_exactly_the_models_schema(store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


def test_migrating_again_keeps_the_data(store: Store) -> None:
    store.apply([make_state("cus_1", 1)])
    store.migrate()
    assert store.get_account("cus_1") is not None


def test_account_is_served_with_exactly_the_contract_fields(store: Store) -> None:
    store.apply([make_state("cus_1", 3, plan="BUSINESS", pending_plan="PRO")])
    account = store.get_account("cus_1")
    assert account == {
        "customer_id": "cus_1",
        "plan": "BUSINESS",
        "interval": "month",
        "subscription_id": "sub_cus_1",
        "subscription_status": "active",
        "payment_state": "ok",
        "cancel_at_period_end": False,
        "pending_plan": "PRO",
        "current_period_end": 1767225600,
        "deleted": False,
        "version": 3,
        "updated_by_event": "evt_cus_1_3",
        "updated_by_event_type": "customer.subscription.updated",
        "updated_at": 1767225603,
        "features": [],
        "stripe_account": None,  # the platform's own customer
    }
    assert store.get_account("cus_unknown") is None


def test_an_older_version_arriving_late_changes_nothing(store: Store) -> None:
    store.apply([make_state("cus_1", 1, plan="FREE")])
    store.apply([make_state("cus_1", 3, plan="BUSINESS")])
    result = store.apply([make_state("cus_1", 2, plan="PRO")])
    assert (result.applied, result.stale) == (0, 1)
    account = store.get_account("cus_1")
    assert account is not None
    assert (account["version"], account["plan"]) == (3, "BUSINESS")
    assert [t["version"] for t in store.get_transitions("cus_1") or []] == [1, 3]


def test_a_replayed_batch_is_harmless(store: Store) -> None:
    batch = [make_state("cus_1", 1), make_state("cus_1", 2, plan="FREE"), make_state("cus_2", 1)]
    assert store.apply(batch).applied == 3
    again = store.apply(batch)
    assert (again.applied, again.stale) == (0, 3)
    assert len(store.get_transitions("cus_1") or []) == 2
    account = store.get_account("cus_1")
    assert account is not None
    assert account["plan"] == "FREE"


def test_versions_out_of_order_within_one_batch(store: Store) -> None:
    result = store.apply([make_state("cus_1", 2, plan="FREE"), make_state("cus_1", 1)])
    assert (result.applied, result.stale) == (1, 1)
    account = store.get_account("cus_1")
    assert account is not None
    assert account["version"] == 2


def test_transitions_record_each_change_with_its_event_oldest_first(store: Store) -> None:
    store.apply([make_state("cus_1", 1, plan="FREE", updated_by_event_type="checkout.done")])
    store.apply(
        [
            make_state("cus_1", 2, plan="PRO"),
            make_state(
                "cus_1", 4, plan="PRO", payment_state="past_due", updated_by_event_type=None
            ),
        ]
    )
    first, second, third = store.get_transitions("cus_1") or []
    assert first["previous_version"] is None
    assert first["changes"]["plan"] == {"from": None, "to": "FREE"}
    assert first["event_type"] == "checkout.done"
    assert second == {
        "version": 2,
        "previous_version": 1,
        "event_id": "evt_cus_1_2",
        "event_type": "customer.subscription.updated",
        "occurred_at": 1767225602,
        "changes": {"plan": {"from": "FREE", "to": "PRO"}},
    }
    assert third["previous_version"] == 2
    assert third["event_type"] is None
    assert third["changes"] == {"payment_state": {"from": "ok", "to": "past_due"}}
    assert store.get_transitions("cus_unknown") is None


def test_a_batch_larger_than_one_in_list(store: Store) -> None:
    count = IN_CHUNK * 2 + 7
    states = [make_state(f"cus_{n:05d}", 1) for n in range(count)]
    assert store.apply(states).applied == count
    assert store.apply(states).stale == count
    assert len(store.list_accounts(limit=count + 1)) == count


def test_pages_are_stable_under_concurrent_inserts(store: Store) -> None:
    seeded = [f"cus_{n:03d}" for n in range(0, 100, 2)]
    store.apply([make_state(customer_id, 1) for customer_id in seeded])
    seen: list[str] = []
    after = None
    inserted = 0
    while True:
        page = store.list_accounts(limit=7, after=after)
        seen.extend(row["customer_id"] for row in page)
        if not page:
            break
        after = page[-1]["customer_id"]
        # Between pages, new accounts land both behind and ahead of the cursor.
        store.apply(
            [make_state(f"cus_{inserted * 2 + 1:03d}", 1), make_state(f"cus_a{inserted}", 1)]
        )
        inserted += 1
    assert seen == sorted(set(seen)), "no account twice, keyset order kept"
    assert set(seeded) <= set(seen), "every account present from the start is served"


def test_filters_by_plan_and_payment_state_with_pages(store: Store) -> None:
    store.apply(
        [
            make_state(f"cus_{n:02d}", 1, plan=("FREE", "PRO")[n % 2], payment_state=state)
            for n, state in enumerate(["ok", "past_due", "requires_action"] * 6)
        ]
    )
    pro = store.list_accounts(limit=100, plan="PRO")
    assert len(pro) == 9
    assert {row["plan"] for row in pro} == {"PRO"}
    past_due = store.list_accounts(limit=100, payment_state="past_due")
    assert [row["customer_id"] for row in past_due] == [f"cus_{n:02d}" for n in range(1, 18, 3)]
    both = store.list_accounts(limit=100, plan="PRO", payment_state="past_due")
    assert [row["customer_id"] for row in both] == ["cus_01", "cus_07", "cus_13"]
    second_page = store.list_accounts(limit=2, plan="PRO", payment_state="past_due", after="cus_01")
    assert [row["customer_id"] for row in second_page] == ["cus_07", "cus_13"]
    assert store.list_accounts(limit=10, plan="ENTERPRISE") == []


def test_a_change_moves_the_account_between_filters(store: Store) -> None:
    store.apply([make_state("cus_1", 1, payment_state="past_due")])
    store.apply([make_state("cus_1", 2, payment_state="ok")])
    assert store.list_accounts(limit=10, payment_state="past_due") == []
    assert [r["customer_id"] for r in store.list_accounts(limit=10, payment_state="ok")] == [
        "cus_1"
    ]


def customer_ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["customer_id"] for row in rows]


def test_features_are_served_and_found_by_feature_with_the_other_filters(store: Store) -> None:
    eleven = [f"feature_{n:02d}" for n in range(11)]
    store.apply(
        [
            make_state("cus_1", 1, features=["api", "sso"]),
            make_state("cus_2", 1, features=eleven, plan="BUSINESS"),
            make_state("cus_3", 1, features=["api"], payment_state="past_due"),
            make_state("cus_4", 1),
        ]
    )
    assert (store.get_account("cus_2") or {})["features"] == eleven
    assert customer_ids(store.list_accounts(limit=10, feature="api")) == ["cus_1", "cus_3"]
    assert customer_ids(store.list_accounts(limit=10, feature="feature_10")) == ["cus_2"]
    assert customer_ids(store.list_accounts(limit=1, feature="api")) == ["cus_1"]
    assert customer_ids(store.list_accounts(limit=5, feature="api", after="cus_1")) == ["cus_3"]
    assert customer_ids(store.list_accounts(limit=5, feature="api", payment_state="ok")) == [
        "cus_1"
    ]
    assert store.list_accounts(limit=5, feature="api", plan="BUSINESS") == []
    assert store.list_accounts(limit=5, feature="nothing") == []


def test_a_new_version_rewrites_the_features_and_an_older_one_never(store: Store) -> None:
    store.apply([make_state("cus_1", 1, features=["api", "sso"])])
    store.apply([make_state("cus_1", 2, features=["sso", "audit"])])
    assert store.list_accounts(limit=5, feature="api") == []
    assert customer_ids(store.list_accounts(limit=5, feature="audit")) == ["cus_1"]
    # A late older version (a redelivery, a racing replica) changes neither table.
    assert store.apply([make_state("cus_1", 1, features=["api"])]).stale == 1
    assert store.list_accounts(limit=5, feature="api") == []
    # Two versions in one batch: the newest one's features, written once.
    store.apply(
        [make_state("cus_1", 3, features=["a"]), make_state("cus_1", 4, features=["b", "c"])]
    )
    assert store.list_accounts(limit=5, feature="a") == []
    assert customer_ids(store.list_accounts(limit=5, feature="c")) == ["cus_1"]
    store.apply([make_state("cus_1", 5, features=[])])
    assert store.list_accounts(limit=5, feature="b") == []
    assert (store.get_account("cus_1") or {})["features"] == []


def test_feature_rows_follow_only_the_stored_version(store: Store) -> None:
    """What a replica racing on the same database sees: its older version's upsert is a no-op
    under the version guard, and its feature rewrite must be one too."""
    store.apply([make_state("cus_1", 5, features=["new"])])
    with store.engine.begin() as connection:
        store._rewrite_features(connection, {"cus_1": ["new"]}, [make_state("cus_1", 4).row()])
    assert customer_ids(store.list_accounts(limit=5, feature="new")) == ["cus_1"]


def test_as_of_shows_the_features_of_that_time(store: Store) -> None:
    store.apply([make_state("cus_1", 1, features=["api"], updated_at=100)])
    store.apply([make_state("cus_1", 2, features=["api", "sso"], updated_at=200)])
    for at, expected in ((150, ["api"]), (250, ["api", "sso"])):
        found = store.get_account_as_of("cus_1", at)
        assert found is not None
        assert found.account is not None
        assert found.account["features"] == expected


def test_database_url_forms() -> None:
    assert engine_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert engine_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert engine_url("sqlite:///var/billstream.db").drivername == "sqlite"
    assert "secret" not in Store("postgresql://u:secret@127.0.0.1/db").display_url


def _history(store: Store) -> None:
    """cus_h: v1 at t=100, v2 at t=300, then a late event of t=200 stored as v3."""
    store.apply([make_state("cus_h", 1, plan="FREE", updated_at=100)])
    store.apply([make_state("cus_h", 2, plan="PRO", updated_at=300)])
    store.apply([make_state("cus_h", 3, plan="PRO", payment_state="past_due", updated_at=200)])


def test_as_of_rebuilds_the_state_of_that_time(store: Store) -> None:
    _history(store)
    now = store.get_account("cus_h")
    latest = store.get_account_as_of("cus_h", 10**12)
    assert latest is not None
    assert latest.account == now
    at_100 = store.get_account_as_of("cus_h", 150)
    assert at_100 is not None
    assert at_100.account == {
        **make_state("cus_h", 1, plan="FREE", updated_at=100).model_dump(),
    }


def test_as_of_never_shows_a_change_from_after_that_time(store: Store) -> None:
    # At t=250 the late event (t=200) had happened, but its transition follows one of t=300:
    # serving v3 would show PRO (from t=300), so the state of v1 is served.
    _history(store)
    found = store.get_account_as_of("cus_h", 250)
    assert found is not None
    assert found.account is not None
    assert (found.account["plan"], found.account["version"]) == ("FREE", 1)


def test_as_of_before_the_first_transition_and_for_unknown_accounts(store: Store) -> None:
    _history(store)
    before = store.get_account_as_of("cus_h", 99)
    assert before is not None
    assert before.account is None
    assert store.get_account_as_of("cus_unknown", 100) is None


def test_transitions_pages_and_event_time_window(store: Store) -> None:
    _history(store)
    first = store.get_transitions("cus_h", limit=2)
    assert [t["version"] for t in first or []] == [1, 2]
    rest = store.get_transitions("cus_h", limit=2, after=2)
    assert [t["version"] for t in rest or []] == [3]
    window = store.get_transitions("cus_h", limit=10, since=200, until=300)
    assert [t["version"] for t in window or []] == [3]  # until excluded, in version order
    assert store.get_transitions("cus_h", limit=10, since=301) == []
    assert store.get_transitions("cus_unknown", limit=10) is None


def test_the_same_customer_in_three_stripe_accounts_is_three_accounts(store: Store) -> None:
    """Connect: rows keyed by account key; served with the plain customer id and its account."""
    store.apply(
        [
            make_state("cus_1", 1, plan="PRO"),
            make_state("cus_1", 1, plan="BUSINESS", stripe_account="acct_a"),
            make_state("cus_1", 2, plan="FREE", stripe_account="acct_b"),
        ]
    )
    platform, a = store.get_account("cus_1"), store.get_account("acct_a/cus_1")
    assert platform is not None
    assert a is not None
    assert (platform["customer_id"], platform["stripe_account"], platform["plan"]) == (
        "cus_1",
        None,
        "PRO",
    )
    assert (a["customer_id"], a["stripe_account"], a["plan"]) == ("cus_1", "acct_a", "BUSINESS")

    def listed(accounts: set[str | None] | None) -> list[str]:
        rows = store.list_accounts(limit=10, stripe_accounts=accounts)
        return [row["customer_id"] for row in rows]  # account keys, in key order

    assert listed(None) == ["acct_a/cus_1", "acct_b/cus_1", "cus_1"]
    assert listed({"acct_b"}) == ["acct_b/cus_1"]
    assert listed({None, "acct_a"}) == ["acct_a/cus_1", "cus_1"]
    assert listed(set()) == []
    as_of = store.get_account_as_of("acct_b/cus_1", 2**40)
    assert as_of is not None
    assert as_of.account is not None
    assert (as_of.account["customer_id"], as_of.account["stripe_account"]) == ("cus_1", "acct_b")
