"""The ranking job: embed, rank, triage, then group duplicate images, in a background thread, its progress on a job row.

The admin page starts it (:func:`start_ranking_job`) and polls :func:`latest_jobs`; one ranking
job per dataset runs at a time (a CLI ranking counts: it runs as a job of its own). A job whose
process died stops its heartbeat (:mod:`services.core.jobs`); it is shown and marked failed once
the heartbeat is older than ``QRELS_JOB_STALE_S``, and a new job may start.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from db.enums import JobStatus, Role
from db.models import Dataset, Job, utcnow
from db.session import Database
from services.core import jobs
from services.core.auth import SYSTEM, Actor, allow
from services.core.config import load_settings
from services.core.jobs import JobView
from services.core.lookups import dataset_id_or_404
from services.duplicates.groups import find_duplicates
from services.ranking.embed import embed_dataset
from services.ranking.rank import JOB_KIND, rank_dataset
from services.ranking.rankers import POOLED
from services.ranking.search import index_after_ranking
from services.triage.compute import triage_dataset

log = logging.getLogger(__name__)

#: A ranking job as the admin page shows it (a stale one as failed).
RankingJob = JobView

__all__ = ["JOB_KIND", "RankingJob", "latest_jobs", "start_ranking_job"]


def _run_ranking_job(db: Database, job_id: int, dataset: str, k: int) -> None:
    """Embed then rank, recording progress and the outcome on the job row (with a heartbeat)."""
    jobs.claim_job(db, job_id)
    progress = jobs.progress_writer(db, job_id)
    try:
        with jobs.Heartbeat(db, job_id):
            embed = embed_dataset(db, dataset, progress=progress)
            rank = rank_dataset(db, dataset, k=k, progress=progress, job_id=job_id)
            triage = triage_dataset(db, dataset)  # suspicion and modality flags from the new runs
            copies = find_duplicates(db, dataset, progress=progress)
            index_after_ranking(db, dataset)  # pool search ready before anyone searches
    except Exception as e:  # the job records any failure for the admin page, then re-raises
        jobs.fail_job(db, job_id, e)
        raise
    jobs.finish_job(
        db,
        job_id,
        f"embedded {embed.images_embedded} images, {embed.texts_embedded} texts, "
        f"{embed.queries_embedded} queries ({len(embed.failed)} unreadable); "
        f"ranked {rank.n_queries} queries, {rank.runs.get(POOLED, 0)} pooled candidates "
        f"(generation {rank.generation}); {triage.summary()}; "
        f"{copies.groups} duplicate groups ({copies.items_in_groups} items)",
    )


@allow(Role.ADMIN)
def start_ranking_job(db: Database, dataset: str, *, k: int = 100, actor: Actor = SYSTEM) -> int:
    """Start embed + rank in a background thread of this process; return the job id to poll.

    Raises:
        ValidationError: a ranking of the dataset is running (one whose process died is not).
    """
    with db.read() as s:
        dataset_id = dataset_id_or_404(s, dataset)
    job_id = jobs.open_job(
        db, JOB_KIND, dataset_id, params={"k": k}, what=repr(dataset), status=JobStatus.QUEUED
    )

    def target() -> None:
        try:
            _run_ranking_job(db, job_id, dataset, k)
        except Exception:
            log.exception("ranking job %d failed", job_id)

    threading.Thread(target=target, name=f"rank-{dataset}", daemon=True).start()
    return job_id


@allow(Role.ADMIN)
def latest_jobs(db: Database, dataset: str, limit: int = 5, *, actor: Actor = SYSTEM) -> list[RankingJob]:
    """The dataset's latest ranking jobs, newest first (none for a dataset that has had none).

    A job whose heartbeat stopped is marked failed here (the page polls this), so it never
    blocks a new one.
    """
    with db.read() as s:
        dataset_id = dataset_id_or_404(s, dataset)
    jobs.fail_stale_jobs(db, kind=JOB_KIND, dataset_id=dataset_id)
    cutoff, now = load_settings().job_stale_s, utcnow()
    with db.read() as s:
        rows = s.scalars(
            select(Job)
            .join(Dataset, Dataset.id == Job.dataset_id)
            .where(Job.dataset_id == dataset_id, Job.kind == JOB_KIND)
            .order_by(Job.id.desc())
            .limit(limit)
        ).all()
        return [jobs.view(j, now, cutoff) for j in rows]
