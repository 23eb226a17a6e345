"""Background jobs that cannot wedge a dataset: a job row, a heartbeat, and stale detection.

A job (ranking, dataset delete) runs in a thread of the app or in a CLI process. While it runs, a
:class:`Heartbeat` thread touches ``jobs.heartbeat_at`` every few seconds. A process that dies
(crash, SIGKILL, server restart) stops its heartbeat; a job whose heartbeat is older than the
cutoff (``QRELS_JOB_STALE_S``), or whose process is gone from this host, is *stale*:
:func:`fail_stale_jobs` marks it failed, so a new job of its kind can start. Whoever starts a job
(:func:`open_job`) and whoever lists jobs run that sweep first.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import JobStatus
from db.models import Dataset, Job, utcnow
from db.session import Database
from services.core.auth import public
from services.core.config import load_settings
from services.core.errors import ValidationError

log = logging.getLogger(__name__)

LIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# These touch job rows only, for the services that start jobs; those check the caller's role.
JOB_BOOKKEEPING = "job bookkeeping for services that check the role themselves; touches job rows only"
_HOST = socket.gethostname()


@dataclass(frozen=True)
class JobView:
    """A job as pages show it: its state, how far it got, and how long since it was last heard of."""

    id: int
    kind: str
    status: JobStatus
    done: int
    total: int
    message: str
    heartbeat_age_s: float | None  # None for a job that never beat (queued, or from before 0007)
    stale: bool  # reported failed: its process stopped beating


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def is_stale(job: Job, now: datetime, cutoff_s: float) -> bool:
    """Whether a queued or running job's process is gone: silent past the cutoff, or dead here."""
    if job.status not in LIVE:
        return False
    params = job.params or {}
    pid = params.get("pid")
    here = params.get("host") == _HOST and isinstance(pid, int) and pid != os.getpid()
    if here and not _pid_alive(pid):
        return True
    last = job.heartbeat_at or job.updated_at or job.created_at
    return last is not None and (now - last).total_seconds() > cutoff_s


def view(job: Job, now: datetime, cutoff_s: float) -> JobView:
    """What a page shows of ``job``: a stale one as failed, with the reason."""
    stale = is_stale(job, now, cutoff_s)
    age = (now - job.heartbeat_at).total_seconds() if job.heartbeat_at is not None else None
    status, message = JobStatus(job.status), job.message
    if stale:
        status, message = JobStatus.FAILED, stale_message(job, now)
    return JobView(job.id, job.kind, status, job.done, job.total, message, age, stale)


def stale_message(job: Job, now: datetime) -> str:
    last = job.heartbeat_at or job.updated_at or job.created_at
    seconds = (now - last).total_seconds() if last is not None else float("nan")
    return (
        f"stopped: no heartbeat for {seconds:.0f} s (its process died or was restarted) "
        f"during {job.message or 'its start'}; start it again"
    )


@public(JOB_BOOKKEEPING)
def fail_stale_jobs(db: Database, *, kind: str | None = None, dataset_id: int | None = None) -> list[int]:
    """Mark every stale job (of ``kind``, on ``dataset_id`` when given) failed; returns their ids."""
    cutoff = load_settings().job_stale_s
    now = utcnow()
    stmt = select(Job).where(Job.status.in_(LIVE))
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    if dataset_id is not None:
        stmt = stmt.where(Job.dataset_id == dataset_id)
    with db.read() as s:
        stale = [j.id for j in s.scalars(stmt) if is_stale(j, now, cutoff)]
    if not stale:
        return []
    with db.write() as s:
        for job in s.scalars(select(Job).where(Job.id.in_(stale), Job.status.in_(LIVE))):
            if is_stale(job, now, cutoff):  # it may have beaten since the read
                log.warning("job %d (%s) is stale: marked failed", job.id, job.kind)
                job.status, job.message, job.updated_at = JobStatus.FAILED, stale_message(job, now), now
    return stale


def live_jobs(s: Session, kind: str, dataset_id: int) -> Sequence[Job]:
    """Queued or running jobs of ``kind`` on the dataset (stale ones included: sweep them first)."""
    return s.scalars(
        select(Job).where(Job.kind == kind, Job.dataset_id == dataset_id, Job.status.in_(LIVE))
    ).all()


@public(JOB_BOOKKEEPING)
def open_job(
    db: Database,
    kind: str,
    dataset_id: int,
    *,
    params: dict | None = None,
    what: str = "",
    status: JobStatus = JobStatus.RUNNING,
    on_deleted: bool = False,
) -> int:
    """Create a job of ``kind`` on the dataset, unless a live one is there; returns its id.

    The job is running in this process (its pid and host are kept, so a killed process is seen
    at once on this host), or queued for a thread of it that calls :func:`claim_job`.

    Stale jobs of that kind are marked failed first, so a job whose process died never blocks.
    The dataset's row lock (PostgreSQL) makes the check and the new row one step, and a dataset
    being deleted takes no new job (``on_deleted``: the delete's own job).

    Raises:
        ValidationError: a live job of that kind runs on the dataset, or it is being deleted.
    """
    fail_stale_jobs(db, kind=kind, dataset_id=dataset_id)
    now = utcnow()
    with db.write() as s:
        deleted = s.execute(
            select(Dataset.deleted_at).where(Dataset.id == dataset_id).with_for_update()
        ).first()
        if deleted is None or (deleted.deleted_at is not None and not on_deleted):
            raise ValidationError(f"{what or 'the dataset'} was deleted; it takes no new {kind} job")
        running = live_jobs(s, kind, dataset_id)
        if running:
            raise ValidationError(
                f"a {kind} job for {what or 'this dataset'} is already running (job {running[0].id}); "
                "wait for it to finish"
            )
        job = Job(
            kind=kind,
            dataset_id=dataset_id,
            status=status,
            params={**(params or {}), "pid": os.getpid(), "host": _HOST},
            message="starting",
            created_at=now,
            updated_at=now,
            heartbeat_at=now,
        )
        s.add(job)
        s.flush()
        return job.id


@public(JOB_BOOKKEEPING)
def claim_job(db: Database, job_id: int) -> None:
    """Mark a queued job as running in this process (its pid and host, a first heartbeat)."""
    now = utcnow()
    with db.write() as s:
        job = s.get(Job, job_id)
        job.status = JobStatus.RUNNING
        job.params = {**(job.params or {}), "pid": os.getpid(), "host": _HOST}
        job.heartbeat_at = job.updated_at = now


@public(JOB_BOOKKEEPING)
def set_progress(db: Database, job_id: int, stage: str, done: int, total: int) -> None:
    """Record how far a job got (a short write; it is a heartbeat too)."""
    now = utcnow()
    with db.write() as s:
        job = s.get(Job, job_id)
        if job is not None:  # gone with its dataset (a dataset delete's own job)
            job.done, job.total, job.message = done, total, stage
            job.updated_at = job.heartbeat_at = now


@public(JOB_BOOKKEEPING)
def progress_writer(db: Database, job_id: int, *, every_s: float = 1.0) -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` that records on the job row, at most once a second per
    stage (a new stage and the last step are always written)."""
    last: dict[str, float] = {}

    def update(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = 0 < total <= done
        if stage in last and not finished and now - last[stage] < every_s:
            return
        last[stage] = now
        set_progress(db, job_id, stage, done, total)

    return update


@public(JOB_BOOKKEEPING)
def finish_job(db: Database, job_id: int, message: str) -> None:
    now = utcnow()
    with db.write() as s:
        job = s.get(Job, job_id)
        if job is not None:
            job.status, job.message, job.updated_at, job.heartbeat_at = JobStatus.DONE, message, now, now


@public(JOB_BOOKKEEPING)
def fail_job(db: Database, job_id: int, error: BaseException) -> None:
    """Record a job's failure; if even that write fails, say so in the log (never swallowed).

    A job left running by a failed write is caught later by its stopped heartbeat.
    """
    try:
        with db.write() as s:
            job = s.get(Job, job_id)
            if job is None:
                log.error("job %d failed (%s); its row is gone with its dataset", job_id, error)
                return
            job.status, job.message, job.updated_at = (
                JobStatus.FAILED,
                f"{type(error).__name__}: {error}",
                utcnow(),
            )
    except Exception:
        log.exception("job %d failed (%s) and its failed status could not be stored", job_id, error)


class Heartbeat:
    """While the ``with`` block runs, touch the job's ``heartbeat_at`` every ``every_s`` seconds.

    A beat that cannot be written is logged and tried again at the next beat.
    """

    def __init__(self, db: Database, job_id: int, every_s: float | None = None) -> None:
        self.db = db
        self.job_id = job_id
        self.every_s = every_s if every_s is not None else load_settings().job_heartbeat_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def beat(self) -> None:
        with self.db.write() as s:
            job = s.get(Job, self.job_id)
            if job is not None:
                job.heartbeat_at = utcnow()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat of job %d could not be written", self.job_id)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=max(1.0, self.every_s))
