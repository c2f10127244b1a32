"""obligations: what the rule asks (action), which duty, the holidays that moved the deadline

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Additive and nullable: instances still on the previous release ignore the new columns.
    with op.batch_alter_table("obligations") as batch:
        batch.add_column(sa.Column("action", sa.String(), nullable=True))
        batch.add_column(sa.Column("duty", sa.String(length=60), nullable=True))
        batch.add_column(sa.Column("holidays", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("obligations") as batch:
        batch.drop_column("holidays")
        batch.drop_column("duty")
        batch.drop_column("action")
