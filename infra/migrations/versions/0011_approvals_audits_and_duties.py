"""approval requests, audits, and duties about no report

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:20:00

Requests to approve a new AI system; a system's data categories, AI Fact Sheet answers, approval
rule and next audit. An obligation may be about no report (an audit, a review opened by hand, an
approval request): `subject_id` names what it is about. A notice may be an answer to someone who
wrote (no obligation) and carry headers of its own (In-Reply-To, Auto-Submitted).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.alter_column("report_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.add_column(sa.Column("subject_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_obligations_subject_id"), ["subject_id"], unique=False)

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.alter_column("obligation_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.alter_column("report_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.add_column(
            sa.Column("headers", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )

    with op.batch_alter_table("ai_systems", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("data_categories", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("fact_sheet", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("approval_rule", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("next_review_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "system_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("vendor", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=2000), nullable=False),
        sa.Column("data_categories", sa.JSON(), nullable=False),
        sa.Column("public_facing", sa.Boolean(), nullable=False),
        sa.Column("pilot", sa.Boolean(), nullable=False),
        sa.Column("fact_sheet", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pack", sa.String(length=60), nullable=False),
        sa.Column("approver_role", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reasons", sa.String(length=5000), nullable=True),
        sa.Column("system_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("system_requests")
    with op.batch_alter_table("ai_systems", schema=None) as batch_op:
        batch_op.drop_column("next_review_at")
        batch_op.drop_column("approval_rule")
        batch_op.drop_column("fact_sheet")
        batch_op.drop_column("data_categories")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("headers")
        batch_op.alter_column("report_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.alter_column("obligation_id", existing_type=sa.String(length=36), nullable=False)
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_obligations_subject_id"))
        batch_op.drop_column("subject_id")
        batch_op.alter_column("report_id", existing_type=sa.String(length=36), nullable=False)
