"""ai systems and sunset reviews

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 17:56:47

The AI system inventory and the sunset reviews of systems; a report's link to its system.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ai_systems",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("vendor", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=2000), nullable=False),
        sa.Column("public_facing", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("pilot", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("approved_by", sa.String(length=320), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "system_reviews",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("system_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("pack", sa.String(length=60), nullable=False),
        sa.Column("decider_role", sa.String(length=40), nullable=False),
        sa.Column("opened_by", sa.String(length=320), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("report_ids", sa.JSON(), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("conditions", sa.String(length=5000), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["ai_systems.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("system_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_system_reviews_system_id"), ["system_id"], unique=False
        )

    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ai_system_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_reports_ai_system_id"), ["ai_system_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_ai_system_id"))
        batch_op.drop_column("ai_system_id")

    with op.batch_alter_table("system_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_reviews_system_id"))

    op.drop_table("system_reviews")
    op.drop_table("ai_systems")
