"""A trainer's schedules are paged by (created_at, order_id) (ptkit.paging).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 16:05:21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index(
            "ix_schedules_trainer_created", ["trainer_id", "created_at", "order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_schedules_trainer_created")
