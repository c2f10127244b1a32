"""published reports

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 20:20:00

A report another system published as an event keeps the event's source, and a key made of its
source and id, unique, so a redelivered event files nothing new.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("event_key", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_reports_event_key", ["event_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_event_key")
        batch_op.drop_column("event_key")
        batch_op.drop_column("source")
