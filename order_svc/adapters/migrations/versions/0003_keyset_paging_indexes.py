"""A customer's orders are paged by (created_at, order_id) (ptkit.paging): the index ends
with the order id too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:05:05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_customer_created")
        batch_op.create_index(
            "ix_orders_customer_created", ["customer_id", "created_at", "order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_customer_created")
        batch_op.create_index(
            "ix_orders_customer_created", ["customer_id", "created_at"], unique=False
        )
