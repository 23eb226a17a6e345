"""duplicate groups: image signatures, groups of copies in a dataset's pool, judgments of copies

- ``image_signatures`` (one per image content: perceptual hash and colour layout of its thumbnail),
  ``duplicate_groups`` (per dataset, with a representative item) and ``duplicate_members`` (an
  item in at most one group, with the evidence that joined it).
- A judgment's (and its history's) provenance may be ``duplicate``: the label an annotator gave an
  item, applied to its copies.

A downgrade drops the three tables and turns ``duplicate`` judgments into ``search`` ones (their
detail still says which item they copy), so no annotator's label is lost.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-14 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVENANCE_BEFORE = ("original", "candidate", "search")
PROVENANCE = (*PROVENANCE_BEFORE, "duplicate")
EVIDENCE = ("representative", "exact", "near")
JUDGMENT_TABLES = ("judgments", "judgment_history")


def _check(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({allowed})"


def _provenance_check(values: Sequence[str]) -> None:
    for table in JUDGMENT_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_provenance"), type_="check")
            batch.create_check_constraint(op.f(f"ck_{table}_provenance"), _check("provenance", values))


def upgrade() -> None:
    op.create_table(
        "image_signatures",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("phash", sa.String(length=16), nullable=False),
        sa.Column("layout", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_image_signatures")),
    )
    op.create_table(
        "duplicate_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("representative_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_duplicate_groups_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["representative_id"],
            ["items.id"],
            name=op.f("fk_duplicate_groups_representative_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_groups")),
    )
    op.create_index(op.f("ix_duplicate_groups_dataset_id"), "duplicate_groups", ["dataset_id"])
    op.create_index(op.f("ix_duplicate_groups_representative_id"), "duplicate_groups", ["representative_id"])
    op.create_table(
        "duplicate_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.String(length=16), nullable=False),
        sa.Column("matched_id", sa.Integer(), nullable=True),
        sa.Column("hamming", sa.Integer(), nullable=True),
        sa.Column("cosine", sa.Float(), nullable=True),
        sa.Column("pixels", sa.Float(), nullable=True),
        sa.CheckConstraint(_check("evidence", EVIDENCE), name=op.f("ck_duplicate_members_duplicateevidence")),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["duplicate_groups.id"],
            name=op.f("fk_duplicate_members_group_id_duplicate_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_duplicate_members_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["matched_id"],
            ["items.id"],
            name=op.f("fk_duplicate_members_matched_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_members")),
        sa.UniqueConstraint("item_id", name=op.f("uq_duplicate_members_item_id")),
    )
    op.create_index(op.f("ix_duplicate_members_group_id"), "duplicate_members", ["group_id"])
    op.create_index(op.f("ix_duplicate_members_matched_id"), "duplicate_members", ["matched_id"])
    _provenance_check(PROVENANCE)


def downgrade() -> None:
    for table in JUDGMENT_TABLES:
        op.execute(f"UPDATE {table} SET provenance = 'search' WHERE provenance = 'duplicate'")
    _provenance_check(PROVENANCE_BEFORE)
    op.drop_index(op.f("ix_duplicate_members_matched_id"), table_name="duplicate_members")
    op.drop_index(op.f("ix_duplicate_members_group_id"), table_name="duplicate_members")
    op.drop_table("duplicate_members")
    op.drop_index(op.f("ix_duplicate_groups_representative_id"), table_name="duplicate_groups")
    op.drop_index(op.f("ix_duplicate_groups_dataset_id"), table_name="duplicate_groups")
    op.drop_table("duplicate_groups")
    op.drop_table("image_signatures")
