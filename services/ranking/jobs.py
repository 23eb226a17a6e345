"""The ranking job: embed, rank, then group duplicate images, in a background thread, its progress on a job row.

The admin page starts it (:func:`start_ranking_job`) and polls :func:`latest_jobs`; one ranking
job per dataset runs at a time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import select

from db.enums import JobStatus, Role
from db.models import Dataset, Job, utcnow
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.duplicates.groups import find_duplicates
from services.ranking.embed import embed_dataset
from services.ranking.rank import rank_dataset
from services.ranking.rankers import POOLED, Progress

log = logging.getLogger(__name__)

JOB_KIND = "rank"  # Job.kind of a ranking job


@dataclass(frozen=True)
class RankingJob:
    """A ranking job as the admin page shows it: its state and how far it got."""

    id: int
    status: JobStatus
    done: int
    total: int
    message: str


def _job_progress(db: Database, job_id: int) -> Progress:
    def update(stage: str, done: int, total: int) -> None:
        with db.write() as s:
            job = s.get(Job, job_id)
            job.status, job.done, job.total, job.message = JobStatus.RUNNING, done, total, stage
            job.updated_at = utcnow()

    return update


def _run_ranking_job(db: Database, job_id: int, dataset: str, k: int) -> None:
    """Embed then rank, recording progress and the outcome on the job row."""
    progress = _job_progress(db, job_id)
    try:
        embed = embed_dataset(db, dataset, progress=progress)
        rank = rank_dataset(db, dataset, k=k, progress=progress)
        copies = find_duplicates(db, dataset, progress=progress)
    except Exception as e:  # the job records any failure for the admin page, then re-raises
        with db.write() as s:
            job = s.get(Job, job_id)
            job.status, job.message, job.updated_at = JobStatus.FAILED, f"{type(e).__name__}: {e}", utcnow()
        raise
    with db.write() as s:
        job = s.get(Job, job_id)
        job.status = JobStatus.DONE
        job.message = (
            f"embedded {embed.images_embedded} images, {embed.texts_embedded} texts, "
            f"{embed.queries_embedded} queries ({len(embed.failed)} unreadable); "
            f"ranked {rank.n_queries} queries, {rank.runs.get(POOLED, 0)} pooled candidates; "
            f"{copies.groups} duplicate groups ({copies.items_in_groups} items)"
        )
        job.updated_at = utcnow()


@allow(Role.ADMIN)
def start_ranking_job(db: Database, dataset: str, *, k: int = 100, actor: Actor = SYSTEM) -> int:
    """Start embed + rank in a background thread of this process; return the job id to poll."""
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        running = s.scalar(
            select(Job.id).where(
                Job.dataset_id == ds.id,
                Job.kind == JOB_KIND,
                Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
            )
        )
        if running is not None:
            raise ValidationError(f"a ranking job for {dataset!r} is already running (job {running})")
        job = Job(
            kind=JOB_KIND, dataset_id=ds.id, status=JobStatus.QUEUED, params={"k": k}, message="starting"
        )
        s.add(job)
        s.flush()
        job_id = job.id

    def target() -> None:
        try:
            _run_ranking_job(db, job_id, dataset, k)
        except Exception:
            log.exception("ranking job %d failed", job_id)

    threading.Thread(target=target, name=f"rank-{dataset}", daemon=True).start()
    return job_id


@allow(Role.ADMIN)
def latest_jobs(db: Database, dataset: str, limit: int = 5, *, actor: Actor = SYSTEM) -> list[RankingJob]:
    """The dataset's latest jobs, newest first (none for a dataset that has had none)."""
    with db.read() as s:
        rows = s.scalars(
            select(Job)
            .join(Dataset, Dataset.id == Job.dataset_id)
            .where(Dataset.name == dataset)
            .order_by(Job.id.desc())
            .limit(limit)
        ).all()
        return [RankingJob(j.id, JobStatus(j.status), j.done, j.total, j.message) for j in rows]
