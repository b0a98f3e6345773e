"""Indexes of the keyset orders ListOrderStatuses, ListClassResults and ListNotifications
page in (ptkit.paging).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 16:05:24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_customer_created",
            ["customer_id", "created_at", "notification_id"],
            unique=False,
        )
    with op.batch_alter_table("order_status_views", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_status_views_customer_result",
            ["customer_id", "result_recorded_at", "order_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_order_status_views_updated_order", ["updated_at", "order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("order_status_views", schema=None) as batch_op:
        batch_op.drop_index("ix_order_status_views_updated_order")
        batch_op.drop_index("ix_order_status_views_customer_result")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_customer_created")
