"""Deleting a dataset without holding the write lock: mark it, then delete its rows in batches.

``DELETE FROM datasets`` cascades to every row of the dataset in one transaction: at 100,000
items and 7.5 million candidates that held SQLite's write lock for 90 s and PostgreSQL's locks for
over 15 minutes. Instead:

1. :func:`mark_deleted`, one short transaction: the dataset gets ``deleted_at`` and a name no
   user can type (``deleted/<id>/<name>``, so the name is free for a new import at once); every
   list and lookup leaves it out from then on.
2. :func:`purge_dataset`, in short transactions (:mod:`db.bulk`): the candidates of every run by
   slices of query ids, the runs, the queries (each slice cascades to its qrels, assignments,
   submissions, judgments, verdicts...), the items, and last the dataset row (its studies, jobs
   and exports are small). It runs as a job with a heartbeat.
3. A delete whose process died leaves the mark: :func:`resume_deletions` (at app start, and
   before each new delete) purges every marked dataset whose delete job is not alive.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from db.bulk import AfterBatch, BatchSizer, delete_by_keys
from db.enums import Role
from db.models import Candidate, Dataset, Item, Query, RankerRun, utcnow
from db.session import Database
from services.core import jobs
from services.core.auth import SYSTEM, Actor, allow, public
from services.core.config import load_settings
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404

log = logging.getLogger(__name__)

JOB_KIND = "delete"  # Job.kind of a dataset delete
RANK_JOB_KIND = "rank"  # services.ranking.rank.JOB_KIND (not imported: that pulls in torch)
SWEEP = "the startup sweep: it finishes deletes an admin started (datasets already marked), nothing else"
_TOMBSTONE = "deleted/{id}/{name}"  # a dataset name cannot hold a slash, so this never clashes


@dataclass(frozen=True)
class PurgeReport:
    dataset_id: int
    candidates: int
    queries: int
    items: int
    longest_write_s: float  # the longest of the short transactions
    batches: int


@allow(Role.ADMIN)
def mark_deleted(db: Database, name: str, *, actor: Actor = SYSTEM) -> int:
    """Hide the dataset at once (one short transaction); returns its id.

    Raises:
        NotFoundError: no dataset of that name.
        ValidationError: a ranking job runs on it (wait for it, or for its heartbeat to stop).
    """
    with db.read() as s:
        dataset_id = dataset_or_404(s, name).id
    jobs.fail_stale_jobs(db, kind=RANK_JOB_KIND, dataset_id=dataset_id)
    with db.write() as s:
        ds = dataset_or_404(s, name, lock=True)
        if jobs.live_jobs(s, RANK_JOB_KIND, ds.id):
            raise ValidationError(
                f"a ranking job is running on {name!r}; delete it when the job has finished"
            )
        tombstone(ds)
        return ds.id


def tombstone(ds: Dataset) -> None:
    """Mark ``ds`` deleted and free its name, inside the caller's transaction (an import that
    replaces the dataset does it in its own); :func:`purge_dataset` deletes its rows afterwards."""
    log.info("dataset %r (%d) marked deleted", ds.name, ds.id)
    ds.deleted_at = utcnow()
    ds.name = _TOMBSTONE.format(id=ds.id, name=ds.name)[:128]


@allow(Role.ADMIN)
def purge_dataset(
    db: Database,
    dataset_id: int,
    *,
    sizer: BatchSizer | None = None,
    after_batch: AfterBatch | None = None,
    actor: Actor = SYSTEM,
) -> PurgeReport:
    """Delete a marked dataset's rows in short transactions, then the dataset; safe to rerun.

    Raises:
        ValidationError: the dataset is not marked deleted (:func:`mark_deleted` first).
    """
    target_s = load_settings().write_batch_ms / 1000
    sizers: list[BatchSizer] = []

    def fresh() -> BatchSizer:  # each table's rows cost differently: each gets its own sizer
        sizers.append(sizer or BatchSizer.for_keys(target_s))
        return sizers[-1]

    with db.read() as s:
        marked = s.scalar(select(Dataset.deleted_at).where(Dataset.id == dataset_id))
        if marked is None and s.get(Dataset, dataset_id) is not None:
            raise ValidationError(f"dataset {dataset_id} is not marked deleted; mark it first")
        run_ids = s.scalars(select(RankerRun.id).where(RankerRun.dataset_id == dataset_id)).all()
        query_ids = s.scalars(select(Query.id).where(Query.dataset_id == dataset_id).order_by(Query.id)).all()
        item_ids = s.scalars(select(Item.id).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
    batches = 0

    def counted(n: int) -> None:
        nonlocal batches
        batches += 1
        if after_batch is not None:
            after_batch(n)

    candidates = 0
    if run_ids:
        c = Candidate.__table__
        candidates = delete_by_keys(
            db,
            c,
            c.c.query_id,
            query_ids,
            where=[c.c.run_id.in_(run_ids)],
            sizer=fresh(),
            after_batch=counted,
        )
        with db.write() as s:
            s.execute(RankerRun.__table__.delete().where(RankerRun.dataset_id == dataset_id))
    q, i = Query.__table__, Item.__table__
    queries = delete_by_keys(db, q, q.c.id, query_ids, sizer=fresh(), after_batch=counted)
    items = delete_by_keys(db, i, i.c.id, item_ids, sizer=fresh(), after_batch=counted)
    with db.write() as s:  # studies, jobs (this one too), exports, rows added since the lists were read
        started = time.perf_counter()
        s.execute(Dataset.__table__.delete().where(Dataset.id == dataset_id, Dataset.deleted_at.is_not(None)))
    longest = max([time.perf_counter() - started, *(z.longest_s for z in sizers)])
    report = PurgeReport(dataset_id, candidates, queries, items, longest, batches + 1)
    log.info("dataset %d purged: %s", dataset_id, report)
    return report


@allow(Role.ADMIN)
def purge_as_job(db: Database, dataset_id: int, *, actor: Actor = SYSTEM) -> PurgeReport | None:
    """Purge under a job with a heartbeat; None when another live delete job has it."""
    try:
        job_id = jobs.open_job(db, JOB_KIND, dataset_id, what=f"dataset {dataset_id}", on_deleted=True)
    except ValidationError:
        return None
    try:
        with jobs.Heartbeat(db, job_id):
            progress = jobs.progress_writer(db, job_id)
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                progress("deleting rows", done, 0)  # the total is not known ahead

            return purge_dataset(db, dataset_id, after_batch=step)
    except Exception as e:
        jobs.fail_job(db, job_id, e)  # the dataset stays marked: the next sweep resumes it
        raise


@public(SWEEP)
def pending_deletions(db: Database) -> list[int]:
    """Ids of datasets marked deleted whose rows are not all gone yet."""
    with db.read() as s:
        return list(s.scalars(select(Dataset.id).where(Dataset.deleted_at.is_not(None)).order_by(Dataset.id)))


@public(SWEEP)
def resume_deletions(db: Database, dataset_ids: list[int] | None = None) -> list[int]:
    """Purge every marked dataset (of ``dataset_ids``) no live job is deleting (a delete whose
    process died); returns those purged."""
    resumed = []
    for dataset_id in pending_deletions(db) if dataset_ids is None else dataset_ids:
        jobs.fail_stale_jobs(db, kind=JOB_KIND, dataset_id=dataset_id)
        if purge_as_job(db, dataset_id) is not None:
            resumed.append(dataset_id)
    return resumed


@public(SWEEP)
def resume_in_background(db: Database) -> threading.Thread | None:
    """Start :func:`resume_deletions` of the datasets marked now in a daemon thread, if any."""
    pending = pending_deletions(db)
    if not pending:
        return None

    def target() -> None:
        try:
            resume_deletions(db, pending)
        except Exception:
            log.exception("resuming dataset deletions failed; the next start tries again")

    thread = threading.Thread(target=target, name="resume-deletions", daemon=True)
    thread.start()
    return thread
