"""The account's entitlement `features`: a JSON column served as is, and account_features to
find accounts by feature with an index on both databases.

Revision ID: r0003
Revises: 0004 (invoice episodes)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Frozen copies of the column types (a migration must not change when models.py does).
ID = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
FEATURE = sa.String(80).with_variant(sa.String(80, collation="C"), "postgresql")

revision = "r0003"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Accounts stored before have no entitlements known: an empty list, and no feature rows.
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("features", sa.JSON, nullable=False, server_default="[]"))
    op.create_table(
        "account_features",
        sa.Column("customer_id", ID, primary_key=True),
        sa.Column("feature", FEATURE, primary_key=True),
    )
    op.create_index(
        "ix_account_features_feature_customer_id", "account_features", ["feature", "customer_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_account_features_feature_customer_id", table_name="account_features")
    op.drop_table("account_features")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("features")
