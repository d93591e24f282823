"""Stripe Connect: the connected account of each account and episode.

Rows keep their key column: a connected account's rows are keyed `acct_…/cus_…` (the
billing.account-state key), the platform's by the customer id as before, so existing rows
need no rewrite; `stripe_account` is NULL for them (the platform).

Revision ID: r0005
Revises: r0003 (account features)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ID = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")

revision = "r0005"
down_revision = "r0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("stripe_account", ID))
    op.create_index(
        "ix_accounts_stripe_account_customer_id", "accounts", ["stripe_account", "customer_id"]
    )
    with op.batch_alter_table("invoice_episodes") as batch:
        batch.add_column(sa.Column("stripe_account", ID))


def downgrade() -> None:
    with op.batch_alter_table("invoice_episodes") as batch:
        batch.drop_column("stripe_account")
    op.drop_index("ix_accounts_stripe_account_customer_id", table_name="accounts")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("stripe_account")
