"""The read model on SQLAlchemy Core: idempotent batch upserts by version, keyset reads.

Synchronous on purpose: one code path for SQLite (pysqlite) and PostgreSQL (psycopg), run in a
thread pool by the HTTP handlers and the consumer (bench/api.py measures the cost).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Row, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from billstream.api import queries
from billstream.api.cohorts import CohortQuery, cohorts
from billstream.api.engines import reader_engine, writer_engine
from billstream.api.episodes import EpisodeMessage
from billstream.api.models import (
    account_features,
    account_transitions,
    accounts,
    invoice_episodes,
    quarantined_records,
)
from billstream.api.quarantine import QuarantinedRecord
from billstream.api.state import ACCOUNT_FIELDS, TRACKED_FIELDS, AccountStateMessage, served
from billstream.routing import split_account_key

MIGRATIONS = "billstream.api:migrations"
IN_CHUNK = 500  # ids per IN (...) list: far below every backend's bound-parameter limit

T = TypeVar("T")


def engine_url(url: str) -> URL:
    """DATABASE_URL as SQLAlchemy needs it: `postgres(ql)://` means psycopg 3."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@dataclass(frozen=True)
class AsOf:
    """A known account at some time: its state then, or None before its first transition."""

    account: dict[str, Any] | None


@dataclass(frozen=True)
class ApplyResult:
    applied: int  # changes stored (one transition each)
    stale: int  # versions not newer than the stored one: nothing changed
    episodes: int = 0  # episode records written (an older version than the stored one is not)


class Store:
    """One database: the `accounts` and `account_transitions` tables, thread-safe."""

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url = engine_url(url)
        self.display_url = self.url.render_as_string(hide_password=True)
        self.schema_ready = threading.Event()
        self.engine = writer_engine(self.url)
        self.reader = reader_engine(self.url, pool_size)
        self._insert = (
            postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        )
        self._upsert = self._upsert_statement()
        self._append = self._append_statement()
        self._add_features = (
            self._insert(account_features)
            .from_select(["customer_id", "feature"], queries.FEATURE_ROW)
            .on_conflict_do_nothing(index_elements=["customer_id", "feature"])
        )
        self._upsert_episode = self._upsert_episode_statement()
        self._quarantine = self._insert(quarantined_records).on_conflict_do_nothing(
            index_elements=["topic", "partition", "offset"]
        )

    def migrate(self) -> None:
        """`alembic upgrade head` on this database (creates it, for SQLite, with its folder)."""
        database = self.url.database
        if self.url.get_backend_name() == "sqlite" and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        self.schema_ready.set()

    def ping(self) -> None:
        """Raises unless the database answers."""
        self._read(lambda connection: connection.execute(text("SELECT 1")))

    def close(self) -> None:
        self.reader.dispose()
        self.engine.dispose()

    def get_account(self, customer_id: str) -> dict[str, Any] | None:
        """The account of an account key (`cus_…`, or `acct_…/cus_…` for a connected one)."""
        params = {"customer_id": customer_id}
        row = self._read(lambda connection: connection.execute(queries.GET_ACCOUNT, params).first())
        return None if row is None else served(dict(zip(ACCOUNT_FIELDS, row, strict=True)))

    def list_accounts(
        self,
        *,
        limit: int,
        after: str | None = None,
        plan: str | None = None,
        payment_state: str | None = None,
        feature: str | None = None,
        stripe_accounts: Collection[str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to `limit` accounts with key > `after`, in key order (`after` is an account key);
        with `stripe_accounts`, only theirs (None in it: the platform's)."""
        given = {"after": after, "plan": plan, "payment_state": payment_state, "feature": feature}
        params: dict[str, Any] = {"limit": limit} | {
            name: value for name, value in given.items() if value is not None
        }
        flags = {name: value is not None for name, value in given.items()}
        if stripe_accounts is not None:
            params["accounts"] = sorted(a for a in stripe_accounts if a is not None)
            flags |= {"accounts_in": True, "platform": None in stripe_accounts}
        query = queries.list_accounts(**flags)
        rows = self._read(lambda connection: connection.execute(query, params).all())
        return [dict(zip(ACCOUNT_FIELDS, row, strict=True)) for row in rows]

    def get_transitions(
        self,
        customer_id: str,
        *,
        limit: int | None = None,
        after: int | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[dict[str, Any]] | None:
        """The account's stored changes in version order, `limit` of them with version > `after`
        and event time in [since, until); None when the account is unknown."""
        params: dict[str, Any] = {"customer_id": customer_id}
        if limit is None:
            query = queries.GET_TRANSITIONS
        else:
            given = {"after": after, "since": since, "until": until}
            params |= {"limit": limit} | {k: v for k, v in given.items() if v is not None}
            query = queries.transitions_page(**{k: v is not None for k, v in given.items()})

        def both(connection: Connection) -> list[Row[Any]] | None:
            if connection.execute(queries.ACCOUNT_EXISTS, params).first() is None:
                return None
            return list(connection.execute(query, params).all())

        rows = self._read(both)
        if rows is None:
            return None
        return [dict(zip(queries.TRANSITION_FIELDS, row, strict=True)) for row in rows]

    def get_account_as_of(self, customer_id: str, as_of: int) -> AsOf | None:
        """The account as it was at event time `as_of`, rebuilt from its transitions; None when
        the account is unknown."""
        params: dict[str, Any] = {"customer_id": customer_id, "as_of": as_of}

        def rows(connection: Connection) -> list[Row[Any]] | None:
            if connection.execute(queries.ACCOUNT_EXISTS, params).first() is None:
                return None
            before = connection.execute(queries.FIRST_AFTER, params).scalar()
            if before is None:
                return list(connection.execute(queries.GET_TRANSITIONS, params).all())
            query = queries.TRANSITIONS_BEFORE
            return list(connection.execute(query, params | {"before": before}).all())

        found = self._read(rows)
        if found is None:
            return None
        if not found:
            return AsOf(None)
        transitions = [dict(zip(queries.TRANSITION_FIELDS, row, strict=True)) for row in found]
        return AsOf(fold_transitions(customer_id, transitions))

    def _read(self, query: Callable[[Connection], T]) -> T:
        """Run a read; once more on a fresh connection if the pooled one had died."""
        try:
            with self.reader.connect() as connection:
                return query(connection)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        with self.reader.connect() as connection:
            return query(connection)

    def apply(
        self, states: Sequence[AccountStateMessage], episodes: Sequence[EpisodeMessage] = ()
    ) -> ApplyResult:
        """Store every state and episode newer than the stored one, in ONE transaction."""
        if not states and not episodes:
            return ApplyResult(0, 0)
        with self.engine.begin() as connection:
            written = self._apply_episodes(connection, episodes)
            known = self._stored(connection, {state.key for state in states})  # account keys
            features_before = {key: row["features"] for key, row in known.items()}
            latest: dict[str, dict[str, Any]] = {}
            transitions = []
            for state in states:
                row = state.row()
                previous = known.get(state.key)
                if previous is not None and row["version"] <= previous["version"]:
                    continue
                transitions.append(_transition(previous, row))
                known[state.key] = latest[state.key] = row
            if latest:
                connection.execute(self._upsert, list(latest.values()))
                connection.execute(self._append, transitions)
                self._rewrite_features(connection, features_before, latest.values())
        return ApplyResult(
            applied=len(transitions), stale=len(states) - len(transitions), episodes=written
        )

    def _apply_episodes(self, connection: Connection, episodes: Sequence[EpisodeMessage]) -> int:
        # One row per key and statement (PostgreSQL refuses to update a row twice in one).
        newest: dict[tuple[str, str], EpisodeMessage] = {}
        for episode in episodes:
            key = (episode.invoice_id, episode.kind)
            if key not in newest or episode.version > newest[key].version:
                newest[key] = episode
        if newest:
            connection.execute(self._upsert_episode, [e.row() for e in newest.values()])
        return len(newest)

    def get_cohorts(self, query: CohortQuery) -> list[dict[str, Any]]:
        """The dunning or SCA cohorts of `query` (billstream/api/cohorts.py)."""
        return self._read(lambda connection: cohorts(connection, query))

    def get_episodes(self) -> list[dict[str, Any]]:
        """Every stored episode, by invoice and kind (for operators and tests)."""
        table = invoice_episodes
        query = select(table).order_by(table.c.invoice_id, table.c.kind)
        rows = self._read(lambda connection: connection.execute(query).mappings().all())
        return [dict(row) for row in rows]

    def quarantine(self, records: Sequence[QuarantinedRecord]) -> None:
        """Keep records that cannot be stored, once per position (a re-read adds nothing)."""
        if records:
            with self.engine.begin() as connection:
                connection.execute(self._quarantine, [record.row() for record in records])

    def quarantined(self) -> list[dict[str, Any]]:
        """Every quarantined record, oldest first (for operators and tests)."""
        query = quarantined_records.select().order_by(quarantined_records.c.id)
        return [dict(row._mapping) for row in self._read(lambda c: c.execute(query).all())]

    def _stored(self, connection: Connection, ids: set[str]) -> dict[str, dict[str, Any]]:
        if self.engine.dialect.name == "postgresql":
            rows = list(connection.execute(queries.STORED_BY_ARRAY, {"ids": list(ids)}))
        else:
            chunks = _chunks(sorted(ids), IN_CHUNK)
            rows = [
                row
                for chunk in chunks
                for row in connection.execute(queries.STORED_BY_IN, {"ids": chunk})
            ]
        return {row[0]: dict(zip(ACCOUNT_FIELDS, row, strict=True)) for row in rows}

    def _rewrite_features(
        self,
        connection: Connection,
        before: Mapping[str, list[str]],
        rows: Iterable[Mapping[str, Any]],
    ) -> None:
        """account_features of each stored version whose features changed (usually none)."""
        changed = [row for row in rows if before.get(row["customer_id"], []) != row["features"]]
        if not changed:
            return
        keys = [{"customer_id": r["customer_id"], "version": r["version"]} for r in changed]
        connection.execute(queries.DELETE_FEATURES, keys)
        added = [
            {**key, "feature": f}
            for key, r in zip(keys, changed, strict=True)
            for f in r["features"]
        ]
        if added:
            connection.execute(self._add_features, added)

    def _upsert_statement(self) -> Insert:
        statement = self._insert(accounts)
        excluded = statement.excluded
        # The guard makes a late or replayed older version a no-op even against a racing writer.
        return statement.on_conflict_do_update(
            index_elements=[accounts.c.customer_id],
            set_={c.name: excluded[c.name] for c in accounts.c if c.name != "customer_id"},
            where=excluded.version > accounts.c.version,
        )

    def _upsert_episode_statement(self) -> Insert:
        statement = self._insert(invoice_episodes)
        excluded = statement.excluded
        keys = ("invoice_id", "kind")
        return statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={c.name: excluded[c.name] for c in invoice_episodes.c if c.name not in keys},
            where=excluded.version > invoice_episodes.c.version,
        )

    def _append_statement(self) -> Insert:
        statement = self._insert(account_transitions)
        return statement.on_conflict_do_nothing(index_elements=["customer_id", "version"])


def fold_transitions(customer_id: str, transitions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The account state after `transitions` (oldest first): each records its changes against
    the state stored before it, and the first lists every field, so their fold is the state."""
    # Transitions stored before `features` existed do not list it: none known then.
    account, customer = split_account_key(customer_id)  # an account key (acct_…/cus_…)
    state: dict[str, Any] = {"customer_id": customer, "stripe_account": account, "features": []}
    for transition in transitions:
        for name, change in transition["changes"].items():
            state[name] = change["to"]
    last = transitions[-1]
    state |= {
        "version": last["version"],
        "updated_by_event": last["event_id"],
        "updated_by_event_type": last["event_type"],
        "updated_at": last["occurred_at"],
    }
    return {name: state.get(name) for name in ACCOUNT_FIELDS}


def _transition(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    changes = {
        name: {"from": None if previous is None else previous[name], "to": new[name]}
        for name in TRACKED_FIELDS
        if previous is None or previous[name] != new[name]
    }
    return {
        "customer_id": new["customer_id"],
        "version": new["version"],
        "previous_version": None if previous is None else previous["version"],
        "event_id": new["updated_by_event"],
        "event_type": new["updated_by_event_type"],
        "occurred_at": new["updated_at"],
        "changes": changes,
    }


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
