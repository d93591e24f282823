"""The read model's tables, described once for queries, migrations and their drift test."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from billstream.limits import (
    FEATURE_KEY_MAX_CHARS,
    ID_MAX_CHARS,
    METADATA_VALUE_MAX_CHARS,
    TEXT_MAX_CHARS,
)

# Columns sized by the contract's limits (billstream.limits, from Stripe's documented ones).
# Byte-wise ("C") ordering on PostgreSQL, as SQLite's BINARY: one keyset order on both backends.
ID: TypeEngine[str] = String(ID_MAX_CHARS).with_variant(
    String(ID_MAX_CHARS, collation="C"), "postgresql"
)
SHORT = String(TEXT_MAX_CHARS)
METADATA_VALUE = String(METADATA_VALUE_MAX_CHARS)
# SQLite only auto-increments an INTEGER PRIMARY KEY.
SERIAL: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("plan", SHORT, nullable=False),
    Column("interval", SHORT),
    Column("subscription_id", SHORT),
    Column("subscription_status", SHORT),
    Column("payment_state", SHORT, nullable=False),
    Column("cancel_at_period_end", Boolean, nullable=False),
    Column("pending_plan", METADATA_VALUE),
    Column("current_period_end", BigInteger),
    Column("deleted", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_by_event", SHORT),
    Column("updated_by_event_type", SHORT),
    Column("updated_at", BigInteger),
    # The account's sorted feature lookup keys, served as they are; `account_features` indexes them.
    Column("features", JSON, nullable=False, server_default="[]"),
    # Connect: the connected account (NULL: the platform); `customer_id` is then acct_…/cus_….
    Column("stripe_account", ID),
)
Index("ix_accounts_stripe_account_customer_id", accounts.c.stripe_account, accounts.c.customer_id)
Index("ix_accounts_plan_customer_id", accounts.c.plan, accounts.c.customer_id)
Index("ix_accounts_payment_state_customer_id", accounts.c.payment_state, accounts.c.customer_id)

# One row per (account, feature) of the stored version, rewritten in the account's transaction:
# `GET /accounts?feature=` is an index range on (feature, customer_id) in keyset order, the same
# on SQLite and PostgreSQL (a JSON containment query would need a GIN index on one of them only).
FEATURE = String(FEATURE_KEY_MAX_CHARS).with_variant(
    String(FEATURE_KEY_MAX_CHARS, collation="C"), "postgresql"
)
account_features = Table(
    "account_features",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("feature", FEATURE, primary_key=True),
)
Index(
    "ix_account_features_feature_customer_id",
    account_features.c.feature,
    account_features.c.customer_id,
)

account_transitions = Table(
    "account_transitions",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("customer_id", ID, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("previous_version", BigInteger),
    Column("event_id", SHORT),
    Column("event_type", SHORT),
    Column("occurred_at", BigInteger),
    Column("changes", JSON, nullable=False),
    # One row per state version: a redelivered change can never be appended twice.
    UniqueConstraint("customer_id", "version", name="uq_account_transitions_customer_id_version"),
)

# The latest record of each billing.invoice-episodes key: the cohorts are counted from it.
invoice_episodes = Table(
    "invoice_episodes",
    metadata,
    Column("invoice_id", ID, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("customer_id", ID, nullable=False),
    Column("subscription_id", SHORT),
    Column("state", String(16), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger),
    Column("attempts", Integer, nullable=False),
    Column("decline_code", SHORT),
    Column("plan", SHORT),
    Column("version", BigInteger, nullable=False),
    Column("opened_month", String(7), nullable=False),  # UTC "YYYY-MM"
    Column("opened_week", String(10), nullable=False),  # UTC Monday "YYYY-MM-DD"
    Column("stripe_account", ID),  # Connect: the connected account (NULL: the platform)
)
Index("ix_invoice_episodes_kind_opened_at", invoice_episodes.c.kind, invoice_episodes.c.opened_at)
Index("ix_invoice_episodes_customer_id", invoice_episodes.c.customer_id)

# Records of billing.account-state the read model could not store (refused by validation or by
# the database): kept here for an operator instead of blocking every record after them.
quarantined_records = Table(
    "quarantined_records",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("topic", String(249), nullable=False),  # Kafka's longest topic name
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary),
    Column("reason", Text, nullable=False),
    Column("quarantined_at", BigInteger, nullable=False),  # Unix milliseconds
    # A record re-read after a crash is quarantined once.
    UniqueConstraint("topic", "partition", "offset", name="uq_quarantined_records_position"),
)
