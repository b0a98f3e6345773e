"""RegisterTrainer is idempotent: the registering manager and the request's request_id are
stored, unique together (no request id is NULL, which may repeat).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trainers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("registered_by", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("request_id", sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint(
            "uq_trainers_registered_by_request", ["registered_by", "request_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("trainers", schema=None) as batch_op:
        batch_op.drop_constraint("uq_trainers_registered_by_request", type_="unique")
        batch_op.drop_column("request_id")
        batch_op.drop_column("registered_by")
