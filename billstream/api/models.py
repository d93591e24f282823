"""The read model's tables, described once for queries, migrations and their drift test."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

# Byte-wise ("C") ordering on PostgreSQL, as SQLite's BINARY: one keyset order on both backends.
ID: TypeEngine[str] = String(255).with_variant(String(255, collation="C"), "postgresql")
SHORT = String(255)
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
    Column("pending_plan", SHORT),
    Column("current_period_end", BigInteger),
    Column("deleted", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_by_event", SHORT),
    Column("updated_by_event_type", SHORT),
    Column("updated_at", BigInteger),
)
Index("ix_accounts_plan_customer_id", accounts.c.plan, accounts.c.customer_id)
Index("ix_accounts_payment_state_customer_id", accounts.c.payment_state, accounts.c.customer_id)

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
