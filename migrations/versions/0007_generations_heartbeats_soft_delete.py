"""ranking generations, job heartbeats, soft-deleted datasets: long writes in short transactions

- ``ranker_runs.generation``: a re-rank writes its runs as a new generation beside the old one
  (the unique name is now per dataset *and* generation); ``datasets.active_generation`` says which
  generation readers see, switched in one short transaction. Existing runs are generation 0, the
  active one.
- ``jobs.heartbeat_at``: a running job touches it every few seconds; a job whose heartbeat is
  older than a cutoff died with its process and is marked failed.
- ``datasets.deleted_at``: a deleted dataset is marked first (it leaves every list at once), then
  its rows are deleted in short batches; a crashed delete resumes from the mark.

A downgrade deletes what the old schema cannot hold: the runs of inactive generations (a re-rank
in progress) and datasets marked deleted (they were on their way out).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "datasets", sa.Column("active_generation", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("datasets", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("ranker_runs") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_ranker_runs_dataset_id_name", type_="unique")
        batch.create_unique_constraint(
            op.f("uq_ranker_runs_dataset_id_name_generation"), ["dataset_id", "name", "generation"]
        )


def _delete_orphans() -> None:
    """What ON DELETE CASCADE would have deleted: SQLite's keys are off during a migration."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    while rows := bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall():
        for table in sorted({row[0] for row in rows}):
            rowids = sorted({row[1] for row in rows if row[0] == table})
            for start in range(0, len(rowids), 500):
                marks = ", ".join(str(int(r)) for r in rowids[start : start + 500])
                bind.exec_driver_sql(f'DELETE FROM "{table}" WHERE rowid IN ({marks})')


def downgrade() -> None:
    # What the old schema cannot hold: a second generation of a run name, a dataset half-deleted.
    op.execute(
        "DELETE FROM ranker_runs WHERE generation <> "
        "(SELECT active_generation FROM datasets WHERE datasets.id = ranker_runs.dataset_id)"
    )
    op.execute("DELETE FROM datasets WHERE deleted_at IS NOT NULL")
    _delete_orphans()
    with op.batch_alter_table("ranker_runs") as batch:
        batch.drop_constraint("uq_ranker_runs_dataset_id_name_generation", type_="unique")
        batch.create_unique_constraint(op.f("uq_ranker_runs_dataset_id_name"), ["dataset_id", "name"])
        batch.drop_column("generation")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("heartbeat_at")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("active_generation")
