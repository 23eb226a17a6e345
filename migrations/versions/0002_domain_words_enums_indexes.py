"""domain words, checked enums, indexes on every foreign key

- Enumerated columns get CHECK constraints (the database refuses a value the code would not write).
- ``adjudications`` splits into ``item_adjudications`` (a label) and ``query_adjudications``
  (a verdict); ids are kept.
- ``study_items`` becomes ``study_trials`` and ``study_assignments.study_item_id`` ``trial_id``.
- ``candidates.sources`` becomes ``candidates.rankers``.
- Every foreign key gets an index with it as the leading column, so deleting a dataset (cascading
  through millions of candidate rows) finds the referring rows by index instead of by scans.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, CHECK constraint name, allowed values): the StrEnums of db/enums.py as of 0002.
ROLE = ("admin", "reviewer", "annotator")
LABEL = ("relevant", "not_relevant", "unsure")
PROVENANCE = ("original", "candidate", "search")
VERDICT = ("accept", "reject", "rewrite")
REASON = ("ambiguous", "unanswerable", "wrong", "duplicate", "other")
IMAGE = ("ok", "missing", "remote")
CHECKS = [
    ("users", "role", "role", ROLE),
    ("items", "image_status", "imagestatus", IMAGE),
    ("query_refs", "image_status", "imagestatus", IMAGE),
    ("query_revisions", "kind", "revisionkind", ("original", "rewrite", "adjudicated")),
    ("ranker_runs", "kind", "runkind", ("ranker", "pooled", "imported")),
    ("jobs", "status", "jobstatus", ("queued", "running", "done", "failed")),
    ("assignments", "status", "assignmentstatus", ("pending", "skipped", "done")),
    ("judgments", "label", "label", LABEL),
    ("judgments", "provenance", "provenance", PROVENANCE),
    ("judgment_history", "label", "label", LABEL),
    ("judgment_history", "provenance", "provenance", PROVENANCE),
    ("query_verdicts", "verdict", "verdict", VERDICT),
    ("query_verdicts", "reason", "rejectreason", REASON),
    ("studies", "kind", "studykind", ("query_quality", "system_preference")),
    ("studies", "status", "studystatus", ("open", "closed")),
]
# (table, column) of foreign keys that had no index leading with them.
FK_INDEXES = [
    ("datasets", "created_by_id"),
    ("queries", "author_id"),
    ("query_refs", "item_id"),
    ("query_revisions", "author_id"),
    ("candidates", "item_id"),
    ("jobs", "dataset_id"),
    ("judgments", "item_id"),
    ("judgments", "submission_id"),
    ("query_verdicts", "revision_id"),
    ("query_verdicts", "submission_id"),
    ("studies", "created_by_id"),
    ("exports", "created_by_id"),
]


def _check(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({allowed})"


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _move_sequence(table: str) -> None:
    """Rows were copied with their ids: PostgreSQL's id sequence must continue after them."""
    if _is_postgres():
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
        )


def upgrade() -> None:
    tables: dict[str, list[tuple[str, str, Sequence[str]]]] = {}
    for table, column, name, values in CHECKS:
        tables.setdefault(table, []).append((column, name, values))
    for table, checks in tables.items():
        with op.batch_alter_table(table) as batch:
            for column, name, values in checks:
                batch.create_check_constraint(op.f(f"ck_{table}_{name}"), _check(column, values))
    for table, column in FK_INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])

    op.execute("ALTER TABLE candidates RENAME COLUMN sources TO rankers")

    # adjudications -> item_adjudications + query_adjudications (ids kept)
    op.create_table(
        "item_adjudications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_check("label", LABEL), name=op.f("ck_item_adjudications_label")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_adjudications_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["query_id"],
            ["queries.id"],
            name=op.f("fk_item_adjudications_query_id_queries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["users.id"],
            name=op.f("fk_item_adjudications_reviewer_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_adjudications")),
    )
    op.create_index("ix_item_adjudications_query_item", "item_adjudications", ["query_id", "item_id"])
    op.create_index(op.f("ix_item_adjudications_item_id"), "item_adjudications", ["item_id"])
    op.create_index(op.f("ix_item_adjudications_reviewer_id"), "item_adjudications", ["reviewer_id"])
    op.create_table(
        "query_adjudications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("revision_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_check("verdict", VERDICT), name=op.f("ck_query_adjudications_verdict")),
        sa.CheckConstraint(_check("reason", REASON), name=op.f("ck_query_adjudications_rejectreason")),
        sa.ForeignKeyConstraint(
            ["query_id"],
            ["queries.id"],
            name=op.f("fk_query_adjudications_query_id_queries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["users.id"],
            name=op.f("fk_query_adjudications_reviewer_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["query_revisions.id"],
            name=op.f("fk_query_adjudications_revision_id_query_revisions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_query_adjudications")),
    )
    op.create_index(op.f("ix_query_adjudications_query_id"), "query_adjudications", ["query_id"])
    op.create_index(op.f("ix_query_adjudications_reviewer_id"), "query_adjudications", ["reviewer_id"])
    op.create_index(op.f("ix_query_adjudications_revision_id"), "query_adjudications", ["revision_id"])
    op.execute(
        "INSERT INTO item_adjudications (id, query_id, item_id, reviewer_id, label, note, created_at) "
        "SELECT id, query_id, item_id, reviewer_id, decision, note, created_at FROM adjudications "
        "WHERE item_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO query_adjudications (id, query_id, reviewer_id, verdict, reason, revision_id, note, created_at) "
        "SELECT id, query_id, reviewer_id, decision, reason, revision_id, note, created_at FROM adjudications "
        "WHERE item_id IS NULL"
    )
    _move_sequence("item_adjudications")
    _move_sequence("query_adjudications")
    op.drop_index("ix_adjudications_query_item", table_name="adjudications")
    op.drop_table("adjudications")

    # study_items -> study_trials; study_assignments.study_item_id -> trial_id (ids kept)
    op.create_table(
        "study_trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(length=255), nullable=True),
        sa.Column("query_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["query_id"], ["queries.id"], name=op.f("fk_study_trials_query_id_queries"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name=op.f("fk_study_trials_study_id_studies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_trials")),
        sa.UniqueConstraint("study_id", "position", name=op.f("uq_study_trials_study_id_position")),
    )
    op.create_index(op.f("ix_study_trials_study_id"), "study_trials", ["study_id"])
    op.create_index(op.f("ix_study_trials_query_id"), "study_trials", ["query_id"])
    op.execute(
        "INSERT INTO study_trials (id, study_id, position, group_key, query_id, payload) "
        "SELECT id, study_id, position, group_key, query_id, payload FROM study_items"
    )
    _move_sequence("study_trials")
    with op.batch_alter_table("study_assignments") as batch:
        batch.drop_constraint("fk_study_assignments_study_item_id_study_items", type_="foreignkey")
        batch.drop_constraint("uq_study_assignments_study_item_id_rater_id", type_="unique")
        batch.drop_index("ix_study_assignments_study_item_id")
        batch.alter_column(
            "study_item_id", new_column_name="trial_id", existing_type=sa.Integer(), nullable=False
        )
    with op.batch_alter_table("study_assignments") as batch:
        batch.create_foreign_key(
            op.f("fk_study_assignments_trial_id_study_trials"),
            "study_trials",
            ["trial_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_unique_constraint(
            op.f("uq_study_assignments_trial_id_rater_id"), ["trial_id", "rater_id"]
        )
        batch.create_index(op.f("ix_study_assignments_trial_id"), ["trial_id"])
    op.drop_index("ix_study_items_study_id", table_name="study_items")
    op.drop_table("study_items")


def downgrade() -> None:
    op.create_table(
        "study_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(length=255), nullable=True),
        sa.Column("query_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["query_id"], ["queries.id"], name=op.f("fk_study_items_query_id_queries"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name=op.f("fk_study_items_study_id_studies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_items")),
        sa.UniqueConstraint("study_id", "position", name=op.f("uq_study_items_study_id_position")),
    )
    op.create_index(op.f("ix_study_items_study_id"), "study_items", ["study_id"])
    op.execute(
        "INSERT INTO study_items (id, study_id, position, group_key, query_id, payload) "
        "SELECT id, study_id, position, group_key, query_id, payload FROM study_trials"
    )
    _move_sequence("study_items")
    with op.batch_alter_table("study_assignments") as batch:
        batch.drop_constraint("fk_study_assignments_trial_id_study_trials", type_="foreignkey")
        batch.drop_constraint("uq_study_assignments_trial_id_rater_id", type_="unique")
        batch.drop_index("ix_study_assignments_trial_id")
        batch.alter_column(
            "trial_id", new_column_name="study_item_id", existing_type=sa.Integer(), nullable=False
        )
    with op.batch_alter_table("study_assignments") as batch:
        batch.create_foreign_key(
            op.f("fk_study_assignments_study_item_id_study_items"),
            "study_items",
            ["study_item_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_unique_constraint(
            op.f("uq_study_assignments_study_item_id_rater_id"), ["study_item_id", "rater_id"]
        )
        batch.create_index(op.f("ix_study_assignments_study_item_id"), ["study_item_id"])
    op.drop_index(op.f("ix_study_trials_query_id"), table_name="study_trials")
    op.drop_index(op.f("ix_study_trials_study_id"), table_name="study_trials")
    op.drop_table("study_trials")

    op.create_table(
        "adjudications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("revision_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_adjudications_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["query_id"], ["queries.id"], name=op.f("fk_adjudications_query_id_queries"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["users.id"],
            name=op.f("fk_adjudications_reviewer_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["query_revisions.id"],
            name=op.f("fk_adjudications_revision_id_query_revisions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjudications")),
    )
    op.create_index("ix_adjudications_query_item", "adjudications", ["query_id", "item_id"])
    # Item decisions keep their ids; query decisions made after the upgrade may share an id with
    # an item decision, so they are numbered after them, in the order they were made.
    op.execute(
        "INSERT INTO adjudications (id, query_id, item_id, reviewer_id, decision, reason, revision_id, note, created_at) "
        "SELECT id, query_id, item_id, reviewer_id, label, NULL, NULL, note, created_at FROM item_adjudications"
    )
    op.execute(
        "INSERT INTO adjudications (id, query_id, item_id, reviewer_id, decision, reason, revision_id, note, created_at) "
        "SELECT q.id, q.query_id, NULL, q.reviewer_id, q.verdict, q.reason, q.revision_id, q.note, q.created_at "
        "FROM query_adjudications q WHERE q.id NOT IN (SELECT id FROM item_adjudications)"
    )
    _move_sequence("adjudications")
    op.execute(
        "INSERT INTO adjudications (query_id, item_id, reviewer_id, decision, reason, revision_id, note, created_at) "
        "SELECT q.query_id, NULL, q.reviewer_id, q.verdict, q.reason, q.revision_id, q.note, q.created_at "
        "FROM query_adjudications q WHERE q.id IN (SELECT id FROM item_adjudications) ORDER BY q.created_at, q.id"
    )
    for name in (
        "ix_query_adjudications_revision_id",
        "ix_query_adjudications_reviewer_id",
        "ix_query_adjudications_query_id",
    ):
        op.drop_index(op.f(name), table_name="query_adjudications")
    op.drop_table("query_adjudications")
    for name in ("ix_item_adjudications_reviewer_id", "ix_item_adjudications_item_id"):
        op.drop_index(op.f(name), table_name="item_adjudications")
    op.drop_index("ix_item_adjudications_query_item", table_name="item_adjudications")
    op.drop_table("item_adjudications")

    op.execute("ALTER TABLE candidates RENAME COLUMN rankers TO sources")
    for table, column in reversed(FK_INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    tables: dict[str, list[str]] = {}
    for table, _column, name, _values in CHECKS:
        tables.setdefault(table, []).append(name)
    for table, names in tables.items():
        with op.batch_alter_table(table) as batch:
            for name in names:
                batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
