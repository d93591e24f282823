"""invoice_episodes: the latest record of each billing.invoice-episodes key, for the cohorts.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Frozen copies of the column types (a migration must not change when models.py does).
ID = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_episodes",
        sa.Column("invoice_id", ID, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("subscription_id", sa.String(255)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.BigInteger, nullable=False),
        sa.Column("closed_at", sa.BigInteger),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("decline_code", sa.String(255)),
        sa.Column("plan", sa.String(255)),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("opened_month", sa.String(7), nullable=False),
        sa.Column("opened_week", sa.String(10), nullable=False),
    )
    op.create_index("ix_invoice_episodes_kind_opened_at", "invoice_episodes", ["kind", "opened_at"])
    op.create_index("ix_invoice_episodes_customer_id", "invoice_episodes", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_invoice_episodes_customer_id", "invoice_episodes")
    op.drop_index("ix_invoice_episodes_kind_opened_at", "invoice_episodes")
    op.drop_table("invoice_episodes")
