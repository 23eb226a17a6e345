"""Finding a dataset's duplicate groups again, as a background job of the Ranking page.

The ranking job groups duplicates after it embeds and ranks; this job only regroups a dataset
whose images are embedded already (after a threshold changes, or for a dataset ranked before
duplicate groups existed). Its progress is on a ``jobs`` row of kind ``duplicates``.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from db.enums import JobStatus, Role
from db.models import Job, utcnow
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.duplicates.groups import find_duplicates

log = logging.getLogger(__name__)

JOB_KIND = "duplicates"


def _set(db: Database, job_id: int, **values: object) -> None:
    with db.write() as s:
        job = s.get(Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)
        job.updated_at = utcnow()


def _run(db: Database, job_id: int, dataset: str) -> None:
    def progress(stage: str, done: int, total: int) -> None:
        _set(db, job_id, status=JobStatus.RUNNING, done=done, total=total, message=stage)

    try:
        report = find_duplicates(db, dataset, progress=progress)
    except Exception as e:  # recorded for the admin page, then logged
        _set(db, job_id, status=JobStatus.FAILED, message=f"{type(e).__name__}: {e}")
        raise
    _set(
        db,
        job_id,
        status=JobStatus.DONE,
        message=f"{report.groups} duplicate groups ({report.items_in_groups} items: {report.exact_copies} "
        f"exact and {report.near_copies} near copies; {report.candidate_pairs} image pairs compared)",
    )


@allow(Role.ADMIN)
def start_duplicates_job(db: Database, dataset: str, *, actor: Actor = SYSTEM) -> int:
    """Regroup the dataset's duplicates in a background thread; return the job id to poll.

    Raises:
        ValidationError: a ranking or duplicates job of the dataset is running.
    """
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        running = s.scalar(
            select(Job.id).where(
                Job.dataset_id == ds.id,
                Job.kind.in_(("rank", JOB_KIND)),
                Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
            )
        )
        if running is not None:
            raise ValidationError(f"a job for {dataset!r} is running (job {running}); wait for it to finish")
        job = Job(kind=JOB_KIND, dataset_id=ds.id, status=JobStatus.QUEUED, message="starting")
        s.add(job)
        s.flush()
        job_id = job.id

    def target() -> None:
        try:
            _run(db, job_id, dataset)
        except Exception:
            log.exception("duplicates job %d failed", job_id)

    threading.Thread(target=target, name=f"duplicates-{dataset}", daemon=True).start()
    return job_id
