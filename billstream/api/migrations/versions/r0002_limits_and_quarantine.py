"""Read model sized by the contract's limits; quarantined_records for records it cannot store.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Frozen copies of the column types (a migration must not change when models.py does).
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # metadata.pending_plan: Stripe allows metadata values up to 500 characters.
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column(
            "pending_plan", type_=sa.String(500), existing_type=sa.String(255), nullable=True
        )
    op.create_table(
        "quarantined_records",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("value", sa.LargeBinary),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("quarantined_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("topic", "partition", "offset", name="uq_quarantined_records_position"),
    )


def downgrade() -> None:
    op.drop_table("quarantined_records")
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column(
            "pending_plan", type_=sa.String(255), existing_type=sa.String(500), nullable=True
        )
