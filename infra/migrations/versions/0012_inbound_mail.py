"""inbound mail

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:40:00

Every message that comes in by email, kept whole with what became of it: filed, threaded to a
report, ignored, quarantined or released.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_mail",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inbound_mail", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_mail_message_id"), ["message_id"])
        batch_op.create_index(batch_op.f("ix_inbound_mail_sender"), ["sender"])
        batch_op.create_index(batch_op.f("ix_inbound_mail_report_id"), ["report_id"])


def downgrade() -> None:
    with op.batch_alter_table("inbound_mail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_mail_report_id"))
        batch_op.drop_index(batch_op.f("ix_inbound_mail_sender"))
        batch_op.drop_index(batch_op.f("ix_inbound_mail_message_id"))
    op.drop_table("inbound_mail")
