"""security cases; obligation holds

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 17:15:08

A security case covers one or more reports (a report is in one case at most); its page and
tasks are obligations. Obligations can be held (a statutory notice delayed at law
enforcement's request) and released, their deadline moving by the time held.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "security_cases",
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("phase", sa.String(length=30), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("because", sa.JSON(), nullable=False),
        sa.Column("owner_role", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("ai_system", sa.String(length=200), nullable=False),
        sa.Column("plans", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("optional_tasks", sa.JSON(), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=320), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=320), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("number"),
        sa.UniqueConstraint("id"),
    )
    op.create_table(
        "case_reports",
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["security_cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
        ),
        sa.PrimaryKeyConstraint("report_id"),
    )
    with op.batch_alter_table("case_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_reports_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("held_by", sa.String(length=320), nullable=True))
        batch_op.add_column(
            sa.Column("held_seconds", sa.Float(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_column("held_seconds")
        batch_op.drop_column("held_by")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("held_at")

    with op.batch_alter_table("case_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_reports_case_id"))

    op.drop_table("case_reports")
    op.drop_table("security_cases")
