"""Upgrading a database that already holds annotation work keeps all of it.

The database under test starts at the first revision and holds a project made through the
services: an imported bundle, users, assignments, submits (a rewrite, a rejection, a changed
judgment with its history, an undo, a skip) and an adjudication. It is then upgraded one revision
at a time to head; after every step each row and each column the first revision had must be
unchanged, and at head the services read the old work and take new work.

So that this keeps working as revisions are added, the project is made by the services on a
database at head and its rows are copied into the first revision's tables (the columns both
have); a later revision that drops or renames a column makes the copy or the comparison fail,
which is the point: such a migration needs its own data check.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, Table, func, insert, select, text

from bench.bench_load import CHEAP_HASHER
from db import migrate
from db.session import Database, dispose_engine, get_engine
from services.annotation.queue import next_assignment, previous_assignment, progress, skip
from services.annotation.submit import LabelInput, QueryWork, undo_last
from services.annotation.submit import submit as submit_work
from services.annotation.task import Task, load_task
from services.core import auth
from services.core.auth import Actor
from services.datasets.assignment import assign
from services.ingest.importer import import_bundle
from tests.bundles import add_pooled_candidates, make_bundle

Snapshot = dict[str, list[tuple[Any, ...]]]


def revisions() -> list[str]:
    """Every revision from the first to head, in upgrade order (the history is linear)."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, "migrations have branched: merge them first"
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def populate(db: Database, folder: Path) -> dict[str, Actor]:
    """A small project with every kind of annotation work, made through the services."""
    actors = {}
    for name, role in (("admin", "admin"), ("rev", "reviewer"), ("ann1", "annotator"), ("ann2", "annotator")):
        info = auth.add_user(db, name, role, "a long password")
        actors[name] = Actor(info.id, info.name, info.role)
    import_bundle(db, make_bundle(folder, n_items=10, n_queries=6), "shop")
    add_pooled_candidates(db, "shop")
    assign(db, "shop", overlap=2)

    def submit(actor: Actor, verdict: str, **kw: Any) -> Task:
        task = load_task(db, actor, next_assignment(db, actor, "shop"))
        labels = {p.item_id: LabelInput("relevant", "original") for p in task.positives}
        c = task.candidates[0]
        labels[c.card.item_id] = LabelInput("relevant", "candidate", position=c.position)
        decision = QueryWork(labels, verdict, client_token=f"{actor.name}-{task.query_id}-{verdict}", **kw)
        submit_work(db, actor, task.assignment_id, decision)
        return task

    a1, a2 = actors["ann1"], actors["ann2"]
    first = submit(a1, "accept", note="looks fine", time_on_task_ms=4200)
    submit(a1, "rewrite", rewrite="Find the crimson item")
    submit(a1, "reject", reason="other", note="two products at once")
    # A changed mind: the first query again, one positive now unsure (history is kept).
    changed = {p.item_id: LabelInput("relevant", "original") for p in first.positives}
    changed[first.positives[0].item_id] = LabelInput("unsure", "original")
    submit_work(db, a1, first.assignment_id, QueryWork(changed, "accept", client_token="ann1-again"))
    submit(a2, "accept")
    submit(a2, "accept")
    assert undo_last(db, a2, "shop") is not None  # undone: previous_state and undone_at kept
    skip(db, a2, next_assignment(db, a2, "shop"))

    from services.review.adjudication import adjudicate

    adjudicate(
        db, actors["rev"], first.query_id, items={first.positives[0].item_id: "relevant"}, verdict="accept"
    )
    return actors


def _tables(engine: Engine) -> dict[str, Table]:
    meta = MetaData()
    meta.reflect(engine)
    return {t.name: t for t in meta.sorted_tables if t.name != "alembic_version"}


def copy_rows(source: Engine, target: Engine) -> None:
    """Copy every row of ``source`` into ``target``'s tables, for the columns both have."""
    src, dst = _tables(source), _tables(target)
    with source.connect() as read, target.begin() as write:
        for name, table in dst.items():
            if name not in src:
                continue
            columns = [c.name for c in table.columns if c.name in src[name].columns]
            rows = [dict(r._mapping) for r in read.execute(select(*(src[name].c[c] for c in columns)))]
            if rows:
                write.execute(insert(table), rows)
        if target.dialect.name == "postgresql":  # explicit ids: move each sequence past them
            for name, table in dst.items():
                if "id" in table.columns:
                    write.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), COALESCE(MAX(id), 1)) FROM {name}"
                        )
                    )


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()  # SQLite keeps no zone; both are UTC
    return value


def snapshot(engine: Engine, tables: dict[str, list[str]]) -> Snapshot:
    """The given columns of every row, ordered by primary key, as comparable plain values."""
    current = _tables(engine)
    out: Snapshot = {}
    with engine.connect() as conn:
        for name, columns in tables.items():
            table = current[name]
            order = [c for c in table.primary_key.columns] or [table.c[columns[0]]]
            rows = conn.execute(select(*(table.c[c] for c in columns)).order_by(*order))
            out[name] = [tuple(_plain(v) for v in row) for row in rows]
    return out


@pytest.mark.timeout(300)
def test_upgrading_a_populated_database_keeps_every_row(
    empty_db_url: str, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)  # the hashes are data here, not the point
    chain = revisions()
    source_url = f"sqlite:///{tmp_path / 'made-at-head.db'}"
    migrate.upgrade(source_url)
    actors = populate(Database(source_url), tmp_path / "bundle")

    migrate.upgrade(empty_db_url, chain[0])
    assert migrate.current_revision(empty_db_url) == chain[0]
    target = get_engine(empty_db_url)
    copy_rows(get_engine(source_url), target)
    dispose_engine(source_url)
    first_schema = {name: [c.name for c in t.columns] for name, t in _tables(target).items()}
    before = snapshot(target, first_schema)
    counts = {name: len(rows) for name, rows in before.items()}
    for table in ("users", "items", "queries", "qrels", "candidates", "assignments", "submissions"):
        assert counts[table] > 0, table
    for table in ("judgments", "judgment_history", "query_verdicts", "query_revisions", "adjudications"):
        assert counts[table] > 0, table

    for revision in chain[1:]:
        migrate.upgrade(empty_db_url, revision)
        assert snapshot(target, first_schema) == before, f"upgrading to {revision} changed stored rows"
    migrate.upgrade(empty_db_url)
    assert migrate.is_up_to_date(empty_db_url)
    assert snapshot(target, first_schema) == before

    # At head the services read the old work and take new work (ids continue after the copied ones).
    db = Database(empty_db_url)
    a1, a2 = actors["ann1"], actors["ann2"]
    done = previous_assignment(db, a1, "shop", before=None)
    task = load_task(db, a1, done)
    assert task.status == "done" and task.my_verdict and task.my_labels
    assert progress(db, a2, "shop").skipped == 1
    pending = next_assignment(db, a2, "shop")
    task = load_task(db, a2, pending)
    labels = {p.item_id: LabelInput("relevant", "original") for p in task.positives}
    result = submit_work(db, a2, pending, QueryWork(labels, "accept", client_token="after-upgrade"))
    assert not result.duplicate
    with db.read() as s:
        assert s.scalar(select(func.max(text("id"))).select_from(text("submissions"))) == result.submission_id
