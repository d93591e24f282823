"""Read model: accounts and append-only account_transitions.

Revision ID: 0001
Revises:
Create Date: 2025-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Frozen copies of the column types (a migration must not change when models.py does).
ID = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
SHORT = sa.String(255)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("customer_id", ID, primary_key=True),
        sa.Column("plan", SHORT, nullable=False),
        sa.Column("interval", SHORT),
        sa.Column("subscription_id", SHORT),
        sa.Column("subscription_status", SHORT),
        sa.Column("payment_state", SHORT, nullable=False),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False),
        sa.Column("pending_plan", SHORT),
        sa.Column("current_period_end", sa.BigInteger),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_by_event", SHORT),
        sa.Column("updated_by_event_type", SHORT),
        sa.Column("updated_at", sa.BigInteger),
    )
    op.create_index("ix_accounts_plan_customer_id", "accounts", ["plan", "customer_id"])
    op.create_index(
        "ix_accounts_payment_state_customer_id", "accounts", ["payment_state", "customer_id"]
    )
    op.create_table(
        "account_transitions",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("previous_version", sa.BigInteger),
        sa.Column("event_id", SHORT),
        sa.Column("event_type", SHORT),
        sa.Column("occurred_at", sa.BigInteger),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.UniqueConstraint(
            "customer_id", "version", name="uq_account_transitions_customer_id_version"
        ),
    )


def downgrade() -> None:
    op.drop_table("account_transitions")
    op.drop_index("ix_accounts_payment_state_customer_id", table_name="accounts")
    op.drop_index("ix_accounts_plan_customer_id", table_name="accounts")
    op.drop_table("accounts")
