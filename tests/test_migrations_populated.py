"""Upgrading a database that already holds annotation work keeps all of it, and so does a downgrade.

The database under test starts at the first revision and holds a project made through the
services: an imported bundle, users, assignments, submits (a rewrite, a rejection, a changed
judgment with its history, an undo, a skip), adjudications, a study with answers, a job and an
export — a row in every table. It is then upgraded one revision at a time to head; after every
step each row and each column the first revision had must read back unchanged, and at head the
services read the old work and take new work. Downgrading to the first revision then leaves every
original row in place.

So that this keeps working as revisions are added, the project is made by the services on a
database at head and its rows are copied into the first revision's tables. A revision that
renames or splits a table says how the first revision's rows read in its schema (:data:`VIEWS`,
keyed by the first revision that has the new shape): that is the migration's own data check.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, Table, func, insert, null, select, text, union_all
from sqlalchemy.sql import Select

from bench.bench_load import CHEAP_HASHER
from db import migrate
from db.session import Database, dispose_engine, get_engine
from services.annotation.history import last_submitted
from services.annotation.queue import next_assignment, previous_assignment, progress, skip
from services.annotation.submit import LabelInput, QueryWork
from services.annotation.submit import submit as submit_work
from services.annotation.task import Task, load_task
from services.core import auth
from services.core.auth import Actor
from services.datasets.assignment import assign
from services.ingest.importer import import_bundle
from services.review.adjudication import adjudicate
from services.review.disputes import load_case
from services.review.reveal import reveal_names
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
    assert last_submitted(db, a2, "shop") is not None  # previous_state kept on every submission
    skip(db, a2, next_assignment(db, a2, "shop"))

    disputed = {i.card.item_id: "relevant" for i in load_case(db, actors["rev"], first.query_id).items}
    adjudicate(db, actors["rev"], first.query_id, items=disputed, verdict="accept")
    assert reveal_names(db, actors["admin"], first.query_id)  # name_reveals (0005) gets a row
    _study_job_and_export(db, actors)
    from services.gold.answers import set_gold  # gold tables (0006) hold a row too

    set_gold(db, first.query_id, verdict="accept", labels={first.positives[0].item_id: "relevant"})
    return actors


def _study_job_and_export(db: Database, actors: dict[str, Actor]) -> None:
    """The tables no annotation touches: a study with one answer, a ranking job, an export."""
    from db.models import Dataset, Export, Job, Query
    from db.studies import Study, StudyAssignment, StudyResponse, StudyTrial

    with db.write() as s:
        ds = s.scalar(select(Dataset))
        query = s.scalar(select(Query).where(Query.dataset_id == ds.id).order_by(Query.id))
        study = Study(
            name="quality", dataset_id=ds.id, kind="query_quality", seed=3, config={"sources": ["a", "b"]}
        )
        s.add(study)
        s.flush()
        trial = StudyTrial(study_id=study.id, position=0, group_key="g1", query_id=query.id, payload={"a": 1})
        s.add(trial)
        s.flush()
        given = StudyAssignment(trial_id=trial.id, rater_id=actors["ann1"].id, position=0, mapping={"A": "a"})
        s.add(given)
        s.flush()
        s.add(
            StudyResponse(assignment_id=given.id, scores={"clarity": {"A": 4}}, preference="A", comment="ok")
        )
        s.add(Job(kind="rank", dataset_id=ds.id, status="done", done=3, total=3, message="ranked"))
        s.add(Export(dataset_id=ds.id, options={"formats": ["beir"]}, manifest={"n": 1}, out_path="/tmp/x"))


# How the first revision's tables read in a later schema: {revision: {first-revision table: select}}.
# A revision that renames, splits or merges tables adds an entry; unchanged tables need none.
def _views_0002(t: dict[str, Table]) -> dict[str, Select]:
    item, query = t["item_adjudications"].c, t["query_adjudications"].c
    adjudications = union_all(
        select(
            item.id,
            item.query_id,
            item.item_id,
            item.reviewer_id,
            item.label.label("decision"),
            null().label("reason"),
            null().label("revision_id"),
            item.note,
            item.created_at,
        ),
        select(
            query.id,
            query.query_id,
            null().label("item_id"),
            query.reviewer_id,
            query.verdict.label("decision"),
            query.reason,
            query.revision_id,
            query.note,
            query.created_at,
        ),
    ).subquery()
    trials, given, cands = t["study_trials"].c, t["study_assignments"].c, t["candidates"].c
    return {
        "adjudications": select(adjudications),
        "study_items": select(
            trials.id, trials.study_id, trials.position, trials.group_key, trials.query_id, trials.payload
        ),
        "study_assignments": select(
            given.id, given.trial_id.label("study_item_id"), given.rater_id, given.position, given.mapping
        ),
        "candidates": select(
            cands.id,
            cands.run_id,
            cands.query_id,
            cands.item_id,
            cands.rank,
            cands.score,
            cands.rankers.label("sources"),
        ),
    }


VIEWS = {"0002": _views_0002}


def _tables(engine: Engine) -> dict[str, Table]:
    meta = MetaData()
    meta.reflect(engine)
    return {t.name: t for t in meta.sorted_tables if t.name != "alembic_version"}


def views_at(engine: Engine, revision: str) -> dict[str, Select]:
    """The first revision's tables as selects over the schema at ``revision``."""
    chain = revisions()
    tables = _tables(engine)
    views: dict[str, Select] = {}
    for rev in chain[1 : chain.index(revision) + 1]:
        if rev in VIEWS:
            views.update(VIEWS[rev](tables))
    return views


def copy_rows(source: Engine, target: Engine) -> None:
    """Copy every row of ``source`` (at head) into ``target``'s first-revision tables."""
    src, dst = _tables(source), _tables(target)
    views = views_at(source, revisions()[-1])
    with source.connect() as read, target.begin() as write:
        for name, table in dst.items():
            if name in views:
                query = views[name]
            elif name in src:
                query = select(*(src[name].c[c.name] for c in table.columns if c.name in src[name].columns))
            else:
                continue
            rows = [dict(r._mapping) for r in read.execute(query)]
            if name == "adjudications":  # item and query decisions were numbered apart: renumber
                rows = [
                    {**r, "id": n}
                    for n, r in enumerate(
                        sorted(rows, key=lambda r: (r["created_at"], r["id"] if r["item_id"] else 1e9)),
                        start=1,
                    )
                ]
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


def snapshot(engine: Engine, tables: dict[str, list[str]], revision: str) -> Snapshot:
    """The first revision's columns of every row (read through :data:`VIEWS` at later revisions),
    ordered by id, as comparable plain values."""
    current = _tables(engine)
    views = views_at(engine, revision)
    out: Snapshot = {}
    with engine.connect() as conn:
        for name, columns in tables.items():
            source = views[name].subquery() if name in views else current[name]
            rows = conn.execute(select(*(source.c[c] for c in columns)))
            out[name] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
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
    before = snapshot(target, first_schema, chain[0])
    empty = [name for name, rows in before.items() if not rows]
    assert not empty, f"tables without rows: the test must fill them too: {empty}"

    for revision in chain[1:]:
        migrate.upgrade(empty_db_url, revision)
        assert snapshot(target, first_schema, revision) == before, (
            f"upgrading to {revision} changed stored rows"
        )
    assert migrate.is_up_to_date(empty_db_url)

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
    decided = {i.card.item_id: "relevant" for i in load_case(db, actors["rev"], task.query_id).items}
    adjudicate(
        db,
        actors["rev"],
        task.query_id,
        items=decided or {task.positives[0].item_id: "relevant"},
        verdict="accept",
    )
    assert reveal_names(db, actors["admin"], task.query_id)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(text("name_reveals"))) == 1

    from services.gold.answers import list_gold, set_gold

    set_gold(db, task.query_id, verdict="reject", reason="ambiguous", labels={}, note="after upgrade")
    assert [g.verdict for g in list_gold(db, "shop")] == ["reject"]

    # Down to the first revision again: every row, old and new, reads back as it did at head.
    at_head = snapshot(target, first_schema, chain[-1])
    assert len(at_head["adjudications"]) == len(before["adjudications"]) + 2
    dispose_engine(empty_db_url)
    migrate.downgrade(empty_db_url, chain[0])
    down = snapshot(get_engine(empty_db_url), first_schema, chain[0])
    # Query decisions made after the split may share an id with an item decision; the downgrade
    # numbers those anew (0002's docstring), so adjudications compare without their ids.
    for snap in (at_head, down):
        snap["adjudications"] = sorted((row[1:] for row in snap["adjudications"]), key=repr)
    assert down == at_head
