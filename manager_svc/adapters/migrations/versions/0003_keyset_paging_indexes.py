"""Indexes of the keyset orders that ListTrainers and ListAssignments page in (ptkit.paging).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:05:15
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_created", ["created_at", "order_id"], unique=False)
    with op.batch_alter_table("trainers", schema=None) as batch_op:
        batch_op.create_index("ix_trainers_name", ["name", "trainer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trainers", schema=None) as batch_op:
        batch_op.drop_index("ix_trainers_name")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_created")
