"""gold queries: a known answer per query (expected verdict, per-item labels) to score annotators

Two new tables, nothing else changes: ``gold_queries`` (one per query: expected verdict, reject
reason, origin planted | adjudication | imported) and ``gold_items`` (the correct label of an item
for a gold query). A downgrade drops them (gold answers are lost; annotation work is untouched).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERDICT = ("accept", "reject", "rewrite")
REASON = ("ambiguous", "unanswerable", "wrong", "duplicate", "other")
ORIGIN = ("planted", "adjudication", "imported")
LABEL = ("relevant", "not_relevant", "unsure")


def _check(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({allowed})"


def upgrade() -> None:
    op.create_table(
        "gold_queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_check("verdict", VERDICT), name=op.f("ck_gold_queries_verdict")),
        sa.CheckConstraint(_check("reason", REASON), name=op.f("ck_gold_queries_rejectreason")),
        sa.CheckConstraint(_check("origin", ORIGIN), name=op.f("ck_gold_queries_goldorigin")),
        sa.ForeignKeyConstraint(
            ["query_id"], ["queries.id"], name=op.f("fk_gold_queries_query_id_queries"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_gold_queries_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gold_queries")),
        sa.UniqueConstraint("query_id", name=op.f("uq_gold_queries_query_id")),
    )
    op.create_index(op.f("ix_gold_queries_created_by_id"), "gold_queries", ["created_by_id"])
    op.create_table(
        "gold_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gold_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.CheckConstraint(_check("label", LABEL), name=op.f("ck_gold_items_label")),
        sa.ForeignKeyConstraint(
            ["gold_id"],
            ["gold_queries.id"],
            name=op.f("fk_gold_items_gold_id_gold_queries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_gold_items_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gold_items")),
        sa.UniqueConstraint("gold_id", "item_id", name=op.f("uq_gold_items_gold_id_item_id")),
    )
    op.create_index(op.f("ix_gold_items_item_id"), "gold_items", ["item_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_gold_items_item_id"), table_name="gold_items")
    op.drop_table("gold_items")
    op.drop_index(op.f("ix_gold_queries_created_by_id"), table_name="gold_queries")
    op.drop_table("gold_queries")
