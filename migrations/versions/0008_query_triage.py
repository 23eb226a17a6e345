"""query triage: a suspicion score and a modality shortcut per query, computed after ranking

One new table, nothing else changes: ``query_triage`` (one row per query: suspicion in [0, 1], the
signals it is made of, which single modality alone finds every labelled positive — text, image,
both, neither — and the rank it was measured at). A downgrade drops it (the ranking job computes
it again); the queue order and hint settings live in the dataset's settings JSON and need no column.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHORTCUT = ("text", "image", "both", "neither")


def upgrade() -> None:
    allowed = ", ".join(f"'{v}'" for v in SHORTCUT)
    op.create_table(
        "query_triage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("suspicion", sa.Float(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("shortcut", sa.String(length=16), nullable=False),
        sa.Column("shortcut_rank", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"shortcut IN ({allowed})", name=op.f("ck_query_triage_shortcut")),
        sa.ForeignKeyConstraint(
            ["query_id"], ["queries.id"], name=op.f("fk_query_triage_query_id_queries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_query_triage")),
        sa.UniqueConstraint("query_id", name=op.f("uq_query_triage_query_id")),
    )


def downgrade() -> None:
    op.drop_table("query_triage")
