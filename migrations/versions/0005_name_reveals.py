"""name reveals: a log of every time an admin revealed the annotators' names of a review case

Reviewers see the annotators of a case as A, B, C, …; only admins may see who is who, and each
time one does, a row here says who revealed which case when.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "name_reveals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=True),
        sa.Column("admin_name", sa.String(length=64), nullable=False),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["query_id"], ["queries.id"], name=op.f("fk_name_reveals_query_id_queries"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["admin_id"], ["users.id"], name=op.f("fk_name_reveals_admin_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_name_reveals")),
    )
    op.create_index(op.f("ix_name_reveals_query_id"), "name_reveals", ["query_id"])
    op.create_index(op.f("ix_name_reveals_admin_id"), "name_reveals", ["admin_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_name_reveals_admin_id"), table_name="name_reveals")
    op.drop_index(op.f("ix_name_reveals_query_id"), table_name="name_reveals")
    op.drop_table("name_reveals")
