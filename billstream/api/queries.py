"""The read queries, built once: SQLAlchemy then skips statement construction per request."""

from __future__ import annotations

import functools

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    exists,
    func,
    or_,
    select,
)

from billstream.api.models import account_features, account_transitions, accounts
from billstream.api.state import ACCOUNT_FIELDS

# Rows become dicts keyed by these plain strings (column names are a str subclass orjson refuses).
TRANSITION_FIELDS = (
    "version",
    "previous_version",
    "event_id",
    "event_type",
    "occurred_at",
    "changes",
)
ACCOUNT_COLUMNS = [accounts.c[name] for name in ACCOUNT_FIELDS]
TRANSITION_COLUMNS = [account_transitions.c[name] for name in TRANSITION_FIELDS]

GET_ACCOUNT = select(*ACCOUNT_COLUMNS).where(accounts.c.customer_id == bindparam("customer_id"))
ACCOUNT_EXISTS = select(accounts.c.version).where(
    accounts.c.customer_id == bindparam("customer_id")
)
# The consumer's lookup of stored states. PostgreSQL: ONE array parameter, as psycopg's prepared
# (generic) plan for a 500-parameter IN list scans the table (catch-up fell to ~500 records/s).
STORED_BY_ARRAY = select(*ACCOUNT_COLUMNS).where(
    accounts.c.customer_id == any_(bindparam("ids", type_=ARRAY(String())))
)
STORED_BY_IN = select(*ACCOUNT_COLUMNS).where(
    accounts.c.customer_id.in_(bindparam("ids", expanding=True))
)
GET_TRANSITIONS = (
    select(*TRANSITION_COLUMNS)
    .where(account_transitions.c.customer_id == bindparam("customer_id"))
    .order_by(account_transitions.c.version)
)


@functools.cache
def list_accounts(
    *,
    after: bool,
    plan: bool,
    payment_state: bool,
    feature: bool = False,
    accounts_in: bool = False,
    platform: bool = False,
) -> Select[tuple[object, ...]]:
    """A keyset page: binds `limit`, and `after`, `plan`, `payment_state`, `feature` when
    filtered. With `feature` the page walks the (feature, customer_id) index of
    account_features in customer_id order and joins each account: an index range, not a scan."""
    query = select(*ACCOUNT_COLUMNS).limit(bindparam("limit", type_=Integer()))
    key = accounts.c.customer_id
    if feature:
        features = account_features.c
        key = features.customer_id
        query = query.join_from(
            accounts, account_features, features.customer_id == accounts.c.customer_id
        )
        query = query.where(features.feature == bindparam("feature"))
    query = query.order_by(key)
    if after:
        query = query.where(key > bindparam("after"))
    if plan:
        query = query.where(accounts.c.plan == bindparam("plan"))
    if payment_state:
        query = query.where(accounts.c.payment_state == bindparam("payment_state"))
    if accounts_in or platform:  # only these Stripe accounts (a filter, or a token's scope)
        column = accounts.c.stripe_account
        connected = column.in_(bindparam("accounts", expanding=True))
        query = query.where(or_(connected, column.is_(None)) if platform else connected)
    return query


# The stored version's feature rows, rewritten only while `version` is the stored one: a racing
# writer's older version (its upsert was a no-op under the version guard) cannot rewrite them.
_IS_STORED_VERSION = exists().where(
    accounts.c.customer_id == bindparam("customer_id"),
    accounts.c.version == bindparam("version", type_=BigInteger()),
)
DELETE_FEATURES = (
    account_features.delete()
    .where(account_features.c.customer_id == bindparam("customer_id"))
    .where(_IS_STORED_VERSION)
)
FEATURE_ROW = select(
    bindparam("customer_id", type_=String()), bindparam("feature", type_=String())
).where(_IS_STORED_VERSION)


@functools.cache
def transitions_page(*, after: bool, since: bool, until: bool) -> Select[tuple[object, ...]]:
    """A keyset page in version order: binds `customer_id`, `limit`, and `after` (a version),
    `since` / `until` (event time, `until` excluded) when given."""
    table = account_transitions.c
    query = (
        select(*TRANSITION_COLUMNS)
        .where(table.customer_id == bindparam("customer_id"))
        .order_by(table.version)
        .limit(bindparam("limit", type_=Integer()))
    )
    if after:
        query = query.where(table.version > bindparam("after", type_=BigInteger()))
    if since:
        query = query.where(table.occurred_at >= bindparam("since", type_=BigInteger()))
    if until:
        query = query.where(table.occurred_at < bindparam("until", type_=BigInteger()))
    return query


# State as of T: the transitions before the first one whose event is newer than T (so a change
# from after T never shows, even when a late event's transition follows it), folded in order.
FIRST_AFTER = select(func.min(account_transitions.c.version)).where(
    account_transitions.c.customer_id == bindparam("customer_id"),
    account_transitions.c.occurred_at > bindparam("as_of", type_=BigInteger()),
)
TRANSITIONS_BEFORE = GET_TRANSITIONS.where(
    account_transitions.c.version < bindparam("before", type_=BigInteger())
)
