"""A refused cancellation (the class was already held) shows in the order's view, and a
notification says what it tells (ADR 0007).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("order_status_views", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "cancellation_refused_reason",
                sa.String(length=500),
                nullable=False,
                server_default="",
            )
        )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sa.String(length=32), nullable=False, server_default="CLASS_RESULT_READY"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("order_status_views", schema=None) as batch_op:
        batch_op.drop_column("cancellation_refused_reason")
