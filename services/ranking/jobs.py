"""The ranking job: embed, rank, then triage a dataset in a background thread, its progress on a job row.

The admin page starts it (:func:`start_ranking_job`) and polls :func:`latest_jobs`; one ranking
job per dataset runs at a time, across every app process (the dataset row is locked while a job
is opened). The job runs in the process that started it; everything about it is on its row, so
every process's Ranking page shows it. That process writes a heartbeat on the row: a job whose
process stopped (a restart, a crash) goes quiet, is reported failed after :data:`STALE_AFTER`,
and no longer blocks a new one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from db.enums import JobStatus, Role
from db.models import Dataset, Job, utcnow
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.ranking.embed import embed_dataset
from services.ranking.rank import rank_dataset
from services.ranking.rankers import POOLED, Progress
from services.triage.compute import triage_dataset

log = logging.getLogger(__name__)

JOB_KIND = "rank"  # Job.kind of a ranking job
HEARTBEAT = timedelta(seconds=15)  # a running job's process touches its row at least this often
STALE_AFTER = timedelta(minutes=2)  # a job quiet for longer lost its process
_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobAbandoned(Exception):
    """The job's row says it is no longer running (reported failed while it was quiet): stop it."""


@dataclass(frozen=True)
class RankingJob:
    """A ranking job as the admin page shows it: its state and how far it got."""

    id: int
    status: JobStatus
    done: int
    total: int
    message: str


def _runner() -> str:
    """This process, as a job row names the one running it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _abandoned(status: str, updated_at: datetime, now: datetime) -> bool:
    return status in _ACTIVE and updated_at + STALE_AFTER < now


def _abandoned_message(runner: str | None, updated_at: datetime) -> str:
    return (
        f"stopped: the app process running it ({runner or 'unknown'}) gave no sign of life since "
        f"{updated_at:%Y-%m-%d %H:%M:%S} UTC; start it again"
    )


def _job_progress(db: Database, job_id: int) -> Progress:
    def progress(stage: str, done: int, total: int) -> None:
        with db.write() as s:
            moved = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status.in_(_ACTIVE))
                .values(status=JobStatus.RUNNING, done=done, total=total, message=stage, updated_at=utcnow())
            ).rowcount
        if not moved:
            raise JobAbandoned(f"job {job_id} was reported failed while it ran")

    return progress


def _heartbeat(db: Database, job_id: int, stop: threading.Event) -> None:
    """Touch the job's row every :data:`HEARTBEAT` until ``stop`` (a long stage reports no progress)."""
    while not stop.wait(HEARTBEAT.total_seconds()):
        try:
            with db.write() as s:
                s.execute(
                    update(Job).where(Job.id == job_id, Job.status.in_(_ACTIVE)).values(updated_at=utcnow())
                )
        except Exception:  # a busy database: the next beat tries again
            log.warning("could not record ranking job %d as alive", job_id, exc_info=True)


def _run_ranking_job(db: Database, job_id: int, dataset: str, k: int) -> None:
    """Embed then rank, recording progress and the outcome on the job row."""
    progress = _job_progress(db, job_id)
    try:
        embed = embed_dataset(db, dataset, progress=progress)
        rank = rank_dataset(db, dataset, k=k, progress=progress)
        triage = triage_dataset(db, dataset)  # suspicion and modality flags from the new runs
    except JobAbandoned:
        raise  # its row already says why it stopped
    except Exception as e:  # the job records any failure for the admin page, then re-raises
        _finish(db, job_id, JobStatus.FAILED, f"{type(e).__name__}: {e}")
        raise
    _finish(
        db,
        job_id,
        JobStatus.DONE,
        f"embedded {embed.images_embedded} images, {embed.texts_embedded} texts, "
        f"{embed.queries_embedded} queries ({len(embed.failed)} unreadable); "
        f"ranked {rank.n_queries} queries, {rank.runs.get(POOLED, 0)} pooled candidates; "
        f"{triage.summary()}",
    )


def _finish(db: Database, job_id: int, status: JobStatus, message: str) -> None:
    """The job's outcome, unless its row was already reported failed (then that report stays)."""
    with db.write() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(_ACTIVE))
            .values(status=status, message=message, updated_at=utcnow())
        )


def _open_job(db: Database, dataset: str, k: int) -> int:
    """The new job's row, unless one is running for the dataset (one whose process stopped is not)."""
    now = utcnow()
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        # Locked until commit: concurrent starts in other app processes wait here, then see this job.
        s.execute(select(Dataset.id).where(Dataset.id == ds.id).with_for_update())
        active = s.scalars(
            select(Job).where(Job.dataset_id == ds.id, Job.kind == JOB_KIND, Job.status.in_(_ACTIVE))
        ).all()
        for job in active:
            if not _abandoned(job.status, job.updated_at, now):
                raise ValidationError(f"a ranking job for {dataset!r} is already running (job {job.id})")
            job.status = JobStatus.FAILED
            job.message = _abandoned_message((job.params or {}).get("runner"), job.updated_at)
            job.updated_at = now
        job = Job(
            kind=JOB_KIND,
            dataset_id=ds.id,
            status=JobStatus.QUEUED,
            params={"k": k, "runner": _runner()},
            message="starting",
            created_at=now,
            updated_at=now,
        )
        s.add(job)
        s.flush()
        return job.id


@allow(Role.ADMIN)
def start_ranking_job(db: Database, dataset: str, *, k: int = 100, actor: Actor = SYSTEM) -> int:
    """Start embed + rank in a background thread of this process; return the job id to poll.

    Raises:
        ValidationError: a ranking job for the dataset is running (in any app process).
    """
    job_id = _open_job(db, dataset, k)

    def target() -> None:
        stop = threading.Event()
        threading.Thread(
            target=_heartbeat, args=(db, job_id, stop), name=f"rank-{job_id}-beat", daemon=True
        ).start()
        try:
            _run_ranking_job(db, job_id, dataset, k)
        except Exception:
            log.exception("ranking job %d failed", job_id)
        finally:
            stop.set()

    threading.Thread(target=target, name=f"rank-{dataset}", daemon=True).start()
    return job_id


@allow(Role.ADMIN)
def latest_jobs(db: Database, dataset: str, limit: int = 5, *, actor: Actor = SYSTEM) -> list[RankingJob]:
    """The dataset's latest jobs, newest first (none for a dataset that has had none).

    A job whose process stopped (no heartbeat for :data:`STALE_AFTER`) is reported failed.
    """
    now = utcnow()
    with db.read() as s:
        rows = s.scalars(
            select(Job)
            .join(Dataset, Dataset.id == Job.dataset_id)
            .where(Dataset.name == dataset)
            .order_by(Job.id.desc())
            .limit(limit)
        ).all()
        return [
            RankingJob(
                j.id,
                JobStatus.FAILED,
                j.done,
                j.total,
                _abandoned_message((j.params or {}).get("runner"), j.updated_at),
            )
            if _abandoned(j.status, j.updated_at, now)
            else RankingJob(j.id, JobStatus(j.status), j.done, j.total, j.message)
            for j in rows
        ]
