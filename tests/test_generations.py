"""Long writes in short transactions: a re-rank beside the candidates annotators see, switched in
one go; ranking jobs whose process died do not block the next; datasets deleted in batches.

Small datasets and a tiny random open_clip model; the ranking is paused between batches from a
hook, so what an annotator sees and stores mid re-rank is checked, not timed. The figures at
100,000 items are bench/bench_scale.py's.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, func, select, text
from sqlalchemy.exc import OperationalError

from db import migrate
from db.bulk import BatchSizer
from db.enums import JobStatus, RunKind
from db.models import Candidate, Dataset, Item, Job, Judgment, Query, RankerRun, utcnow
from db.session import Database, FairLock, dispose_engine, write_lock
from services.annotation.queue import my_datasets, next_assignment
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import load_task
from services.core import jobs
from services.core.auth import Actor
from services.core.errors import NotFoundError, ValidationError
from services.datasets import deletion
from services.datasets.assignment import assign
from services.datasets.catalog import delete_dataset, list_datasets
from services.ingest.importer import import_bundle
from services.ranking import generations
from services.ranking.embed import embed_dataset
from services.ranking.generations import ranking_version
from services.ranking.jobs import latest_jobs
from services.ranking.rank import JOB_KIND, rank_dataset
from tests.bundles import add_pooled_candidates, make_bundle
from tests.test_ranking import tiny_embedder  # noqa: F401  (a fixture)


@pytest.fixture
def ranked(db: Database, tmp_path: Path, users: dict[str, Actor], tiny_embedder) -> Database:  # noqa: F811
    """A small dataset, embedded and ranked (k=3), assigned to ann1."""
    import_bundle(db, make_bundle(tmp_path / "b", n_items=12, n_queries=4), "shop")
    embed_dataset(db, "shop", embedder=tiny_embedder)
    rank_dataset(db, "shop", k=3, embedder=tiny_embedder)
    assign(db, "shop", overlap=1, annotators=["ann1"])
    return db


def _shown(db: Database, actor: Actor, assignment_id: int) -> set[tuple[int, int]]:
    return {(c.card.item_id, c.rank) for c in load_task(db, actor, assignment_id).candidates}


def _pooled(db: Database) -> tuple[int, int]:
    """(id, generation) of the pooled run annotators see."""
    with db.read() as s:
        active = s.scalar(select(Dataset.active_generation).where(Dataset.name == "shop"))
        return s.execute(
            select(RankerRun.id, RankerRun.generation).where(
                RankerRun.name == "pooled", RankerRun.generation == active
            )
        ).one()


def _work(db: Database, actor: Actor, assignment_id: int, token: str) -> QueryWork:
    task = load_task(db, actor, assignment_id)
    labels = {p.item_id: LabelInput("relevant", "original") for p in task.positives}
    c = task.candidates[0]
    labels[c.card.item_id] = LabelInput("relevant", "candidate", position=c.position)
    return QueryWork(labels, "accept", client_token=token)


def test_a_submit_during_a_rerank_lands_on_the_generation_it_was_shown(
    ranked: Database,
    users: dict[str, Actor],
    tiny_embedder,  # noqa: F811
) -> None:
    db, ann = ranked, users["ann1"]
    first = next_assignment(db, ann, "shop")
    before = _shown(db, ann, first)
    old_run, old_generation = _pooled(db)
    with db.read() as s:
        version_before = ranking_version(s, s.scalar(select(Dataset.id).where(Dataset.name == "shop")))

    paused, resume = threading.Event(), threading.Event()
    batches: list[int] = []

    def pause_after_the_first_batch(n: int) -> None:
        batches.append(n)
        if len(batches) == 1:
            paused.set()
            assert resume.wait(60), "the test never resumed the ranking"

    errors: list[BaseException] = []

    def rerank() -> None:
        try:
            rank_dataset(db, "shop", k=5, embedder=tiny_embedder, after_batch=pause_after_the_first_batch)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    thread = threading.Thread(target=rerank)
    thread.start()
    try:
        assert paused.wait(120), errors
        # Mid re-rank: the new generation is half-written beside the old; annotators see the old.
        with db.read() as s:
            generations = set(s.scalars(select(RankerRun.generation).distinct()))
        assert generations == {old_generation, old_generation + 1}
        assert _shown(db, ann, first) == before
        result = submit(db, ann, first, _work(db, ann, first, "during-rerank"))
        assert not result.duplicate
        with db.read() as s:
            detail = s.scalar(
                select(Judgment.provenance_detail).where(
                    Judgment.submission_id == result.submission_id, Judgment.provenance == "candidate"
                )
            )
        assert detail["run_id"] == old_run  # the run the annotator was shown
    finally:
        resume.set()
        thread.join(120)
    assert not errors and not thread.is_alive()
    assert len(batches) > 1

    new_run, new_generation = _pooled(db)
    assert new_generation == old_generation + 1 and new_run != old_run
    second = next_assignment(db, ann, "shop")
    task = load_task(db, ann, second)
    with db.read() as s:
        ds_id = s.scalar(select(Dataset.id).where(Dataset.name == "shop"))
        assert ranking_version(s, ds_id) != version_before
        assert set(s.scalars(select(RankerRun.generation).distinct())) == {new_generation}  # old deleted
        assert s.scalar(select(func.count()).select_from(RankerRun)) == 5
        assert s.get(RankerRun, new_run).params["k"] == 5
        assert (
            s.scalar(select(func.count()).select_from(Judgment).where(Judgment.submission_id.is_not(None)))
            > 0
        )
        new_rows = set(
            s.execute(
                select(Candidate.item_id, Candidate.rank).where(
                    Candidate.run_id == new_run, Candidate.query_id == task.query_id
                )
            ).all()
        )
    positives = {p.item_id for p in task.positives}
    assert {(c.card.item_id, c.rank) for c in task.candidates} == {
        r for r in new_rows if r[0] not in positives
    }
    result = submit(db, ann, second, _work(db, ann, second, "after-rerank"))
    with db.read() as s:
        detail = s.scalar(
            select(Judgment.provenance_detail).where(
                Judgment.submission_id == result.submission_id, Judgment.provenance == "candidate"
            )
        )
    assert detail["run_id"] == new_run


def test_a_ranking_whose_process_died_is_failed_and_a_new_one_starts(
    ranked: Database,
    monkeypatch: pytest.MonkeyPatch,
    tiny_embedder,  # noqa: F811
) -> None:
    db = ranked
    monkeypatch.setenv("QRELS_JOB_STALE_S", "30")
    with db.read() as s:
        ds_id = s.scalar(select(Dataset.id).where(Dataset.name == "shop"))
    # A job of another server whose heartbeat stopped a minute ago.
    quiet = utcnow() - timedelta(seconds=60)
    with db.write() as s:
        s.add(
            Job(
                kind=JOB_KIND,
                dataset_id=ds_id,
                status=JobStatus.RUNNING,
                message="writing candidates",
                params={"host": "elsewhere", "pid": 1},
                heartbeat_at=quiet,
                updated_at=quiet,
            )
        )
    monkeypatch.setenv("QRELS_JOB_STALE_S", "120")
    with pytest.raises(ValidationError, match="already running"):  # not stale at a 2-minute cutoff
        rank_dataset(db, "shop", k=3, embedder=tiny_embedder)
    monkeypatch.setenv("QRELS_JOB_STALE_S", "30")
    (stale,) = latest_jobs(db, "shop", limit=1)
    assert stale.status == JobStatus.FAILED and stale.stale is False  # marked failed by the sweep
    assert "no heartbeat" in stale.message
    report = rank_dataset(db, "shop", k=3, embedder=tiny_embedder)  # a new job starts
    assert report.generation == 2
    newest = latest_jobs(db, "shop", limit=1)[0]
    assert newest.status == JobStatus.DONE and newest.heartbeat_age_s is not None


def test_a_stale_job_of_a_dead_process_here_is_seen_at_once(ranked: Database, tiny_embedder) -> None:  # noqa: F811
    db = ranked
    proc = subprocess.Popen(["true"])
    proc.wait()
    with db.read() as s:
        ds_id = s.scalar(select(Dataset.id).where(Dataset.name == "shop"))
    now = utcnow()
    with db.write() as s:
        job = Job(
            kind=JOB_KIND,
            dataset_id=ds_id,
            status=JobStatus.RUNNING,
            message="ranking",
            params={"host": jobs._HOST, "pid": proc.pid},
            heartbeat_at=now,
            updated_at=now,
        )
        s.add(job)
        s.flush()
        job_id = job.id
    assert jobs.fail_stale_jobs(db, kind=JOB_KIND) == [job_id]
    assert rank_dataset(db, "shop", k=3, embedder=tiny_embedder).generation == 2  # a new job starts


def test_a_failed_status_write_is_logged(sqlite_db: Database, tmp_path: Path, caplog) -> None:
    import_bundle(sqlite_db, make_bundle(tmp_path / "b", n_items=2, n_queries=1), "shop")
    with sqlite_db.read() as s:
        ds_id = s.scalar(select(Dataset.id))
    job_id = jobs.open_job(sqlite_db, JOB_KIND, ds_id)
    readonly = Database(f"sqlite:///file:{sqlite_db.engine.url.database}?mode=ro&uri=true")
    with caplog.at_level(logging.ERROR, logger="services.core.jobs"):
        jobs.fail_job(readonly, job_id, RuntimeError("boom"))  # the write fails: the database is read-only
    assert f"job {job_id} failed (boom) and its failed status could not be stored" in caplog.text
    dispose_engine(readonly.url)


# --------------------------------------------------------------------------- dataset delete


def _counts(db: Database) -> dict[str, int]:
    meta = MetaData()
    meta.reflect(db.engine)
    with db.read() as s:
        return {
            name: s.scalar(select(func.count()).select_from(table))
            for name, table in meta.tables.items()
            if name not in ("alembic_version", "jobs")
        }


def _busy_dataset(db: Database, tmp_path: Path, name: str, users: dict[str, Actor]) -> None:
    import_bundle(db, make_bundle(tmp_path / name, n_items=10, n_queries=6), name)
    add_pooled_candidates(db, name)
    assign(db, name, overlap=2, annotators=["ann1", "ann2"])
    for ann in (users["ann1"], users["ann2"]):
        current = next_assignment(db, ann, name)
        submit(db, ann, current, _work(db, ann, current, f"{name}-{ann.name}"))


def test_a_dataset_is_deleted_in_batches_and_a_half_done_delete_resumes(
    db: Database, tmp_path: Path, users: dict[str, Actor]
) -> None:
    _busy_dataset(db, tmp_path, "keep", users)
    before = _counts(db)
    _busy_dataset(db, tmp_path, "gone", users)
    assert _counts(db) != before

    class Crash(Exception):
        pass

    steps: list[int] = []

    def crash_after_three(n: int) -> None:
        steps.append(n)
        if len(steps) == 3:
            raise Crash

    dataset_id = deletion.mark_deleted(db, "gone")
    # Gone from every list at once, its name free again; its rows are still there.
    assert [d.name for d in list_datasets(db)] == ["keep"]
    assert my_datasets(db, users["ann1"]) == ["keep"]
    with pytest.raises(NotFoundError):
        next_assignment(db, users["ann1"], "gone")
    with pytest.raises(Crash):  # the process dies after three short transactions
        deletion.purge_dataset(
            db, dataset_id, sizer=BatchSizer(first=2, low=1, high=2), after_batch=crash_after_three
        )
    assert deletion.pending_deletions(db) == [dataset_id]
    assert deletion.resume_deletions(db) == [dataset_id]  # the next start finishes it
    assert deletion.pending_deletions(db) == []
    assert _counts(db) == before  # nothing of "gone" is left, nothing of "keep" went
    assert [d.name for d in list_datasets(db)] == ["keep"]

    import_bundle(db, make_bundle(tmp_path / "again", n_items=4, n_queries=2), "gone")  # the name is free
    report = delete_dataset(db, "gone")
    assert report is not None and report.items == 4 and report.queries == 2
    assert _counts(db) == before


def test_a_dataset_with_a_running_ranking_is_not_deleted(ranked: Database) -> None:
    db = ranked
    with db.read() as s:
        ds_id = s.scalar(select(Dataset.id).where(Dataset.name == "shop"))
    jobs.open_job(db, JOB_KIND, ds_id)
    with pytest.raises(ValidationError, match="ranking job is running"):
        delete_dataset(db, "shop")
    assert [d.name for d in list_datasets(db)] == ["shop"]


# --------------------------------------------------------------------------- fair write queue


def test_writers_of_a_process_take_turns_in_arrival_order() -> None:
    lock = FairLock()
    assert lock.acquire(1) and lock.acquire(1)  # reentrant
    order: list[int] = []
    threads = []
    for n in range(6):
        t = threading.Thread(target=lambda n=n: (lock.acquire(10), order.append(n), lock.release()))
        t.start()
        threads.append(t)
        while lock.waiting < n + 1:  # each arrives after the one before
            threading.Event().wait(0.001)
    lock.release()
    assert order == []  # still held once
    lock.release()
    for t in threads:
        t.join(10)
    assert order == list(range(6))


def test_a_writer_that_gets_no_turn_fails_like_a_locked_database(sqlite_db: Database) -> None:
    import services.core.auth  # noqa: F401  (a write the app does)
    from db import session

    queue = write_lock(sqlite_db.url)
    assert queue is not None
    holder_ready, done = threading.Event(), threading.Event()

    def hold() -> None:
        with sqlite_db.write():
            holder_ready.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holder_ready.wait(10)
    saved = session.SQLITE_BUSY_TIMEOUT_MS
    session.SQLITE_BUSY_TIMEOUT_MS = 50
    try:
        with pytest.raises(OperationalError, match="database is locked"), sqlite_db.write():
            pass
    finally:
        session.SQLITE_BUSY_TIMEOUT_MS = saved
        done.set()
        holder.join(10)
    assert queue.waiting == 0


# --------------------------------------------------------------------------- migration 0007


def test_0007_downgrade_drops_what_0006_cannot_hold_and_upgrade_keeps_runs_visible(
    db_url: str, data_dir: Path, tmp_path: Path
) -> None:
    db = Database(db_url)
    import_bundle(db, make_bundle(tmp_path / "b", n_items=6, n_queries=3), "shop")
    add_pooled_candidates(db, "shop")  # generation 0, the active one
    with db.read() as s:
        ds_id, run_id = s.execute(select(RankerRun.dataset_id, RankerRun.id)).one()
    generations.begin_generation(db, ds_id, [("pooled", RunKind.POOLED, {})])  # a re-rank mid-way
    import_bundle(db, make_bundle(tmp_path / "c", n_items=2, n_queries=1), "doomed")
    deletion.mark_deleted(db, "doomed")  # a delete mid-way

    migrate.downgrade(db_url, "0006")
    with db.read() as s:
        assert s.execute(text("SELECT name FROM datasets")).scalars().all() == ["shop"]
        assert s.execute(text("SELECT id, name FROM ranker_runs")).all() == [(run_id, "pooled")]
        assert s.scalar(text("SELECT count(*) FROM candidates")) == 6 * 3
    migrate.upgrade(db_url)
    dispose_engine(db_url)
    db = Database(db_url)
    with db.read() as s:
        assert s.execute(select(Dataset.active_generation, Dataset.deleted_at)).all() == [(0, None)]
        assert s.scalar(select(generations.pooled_run(ds_id))) == run_id


# --------------------------------------------------------------------------- db/bulk.py


def test_bulk_insert_and_delete_keep_every_value(db: Database, tmp_path: Path) -> None:
    """Multi-row inserts go through each column's own processing (JSON here) on both backends."""
    from db.bulk import delete_by_keys, insert_rows

    import_bundle(db, make_bundle(tmp_path / "b", n_items=6, n_queries=3), "shop")
    with db.read() as s:
        ds_id = s.scalar(select(Dataset.id))
        queries = s.scalars(select(Query.id).order_by(Query.id)).all()
        items = s.scalars(select(Item.id).order_by(Item.id)).all()
    _, runs = generations.begin_generation(db, ds_id, [("pooled", RunKind.POOLED, {})])
    rows = [
        {
            "run_id": runs["pooled"],
            "query_id": q,
            "item_id": i,
            "rank": r,
            "score": 1.0 / r,
            "rankers": {"bm25": {"rank": r, "score": 0.5}, "note": "ü"},
        }
        for q in queries
        for r, i in enumerate(items, start=1)
    ]
    batches: list[int] = []
    sizer = BatchSizer(first=4, low=1, high=5)
    table = Candidate.__table__
    assert insert_rows(db, table, iter(rows), sizer=sizer, after_batch=batches.append) == len(rows)
    assert sum(batches) == len(rows) and max(batches) <= 5 and len(sizer.held_s) == len(batches)
    with db.read() as s:
        stored = s.execute(
            select(Candidate.query_id, Candidate.item_id, Candidate.rank, Candidate.score, Candidate.rankers)
            .where(Candidate.run_id == runs["pooled"])
            .order_by(Candidate.query_id, Candidate.rank)
        ).all()
    assert [tuple(r) for r in stored] == [
        (r["query_id"], r["item_id"], r["rank"], r["score"], r["rankers"]) for r in rows
    ]
    gone = delete_by_keys(
        db,
        table,
        table.c.query_id,
        queries[:2],
        where=[table.c.run_id == runs["pooled"]],
        sizer=BatchSizer.for_keys(),
    )
    assert gone == 2 * len(items)
    with db.read() as s:
        left = set(s.scalars(select(Candidate.query_id).where(Candidate.run_id == runs["pooled"])))
    assert left == {queries[2]}
