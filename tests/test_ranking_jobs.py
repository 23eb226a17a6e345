"""Ranking jobs across app processes: one at a time per dataset whoever starts it, and a job whose
process stopped is reported failed and does not block the next one."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from db.enums import JobStatus
from db.models import Job, utcnow
from db.session import Database
from services.core.errors import ValidationError
from services.ingest.importer import import_bundle
from services.ranking import jobs
from services.ranking.jobs import STALE_AFTER, JobAbandoned, latest_jobs
from tests.bundles import make_bundle


@pytest.fixture
def shop(db: Database, tmp_path: Path) -> Database:
    import_bundle(db, make_bundle(tmp_path / "b", n_items=4, n_queries=2), "shop")
    return db


def test_concurrent_starts_open_one_job(shop: Database) -> None:
    """Eight admins on as many processes press "Embed and rank" at once: one job, seven refusals."""
    gate = threading.Barrier(8, timeout=30)
    opened: list[int] = []
    refused: list[str] = []

    def press() -> None:
        gate.wait()
        try:
            opened.append(jobs._open_job(shop, "shop", 10))
        except ValidationError as e:
            refused.append(str(e))

    threads = [threading.Thread(target=press) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(opened) == 1 and len(refused) == 7
    assert all(f"already running (job {opened[0]})" in r for r in refused)
    with shop.read() as s:
        assert s.scalars(select(Job.status)).all() == [JobStatus.QUEUED]


def test_a_job_whose_process_stopped_is_failed_and_makes_way(shop: Database) -> None:
    old = jobs._open_job(shop, "shop", 10)
    with pytest.raises(ValidationError, match="already running"):
        jobs._open_job(shop, "shop", 10)
    progress = jobs._job_progress(shop, old)
    progress("embedding images", 1, 4)  # alive: reported running
    assert latest_jobs(shop, "shop")[0].status == JobStatus.RUNNING
    with shop.write() as s:  # then its process stops: no heartbeat any more
        quiet_since = utcnow() - STALE_AFTER - timedelta(seconds=5)
        s.execute(update(Job).where(Job.id == old).values(updated_at=quiet_since))
    (shown,) = latest_jobs(shop, "shop")
    assert shown.status == JobStatus.FAILED and "gave no sign of life" in shown.message
    assert jobs._runner() in shown.message  # which process it was
    new = jobs._open_job(shop, "shop", 10)
    with shop.read() as s:
        assert s.get(Job, old).status == JobStatus.FAILED
        assert s.get(Job, new).status == JobStatus.QUEUED
    with pytest.raises(JobAbandoned):  # the old job, if it was only slow, stops at its next step
        progress("embedding images", 2, 4)
    jobs._finish(shop, old, JobStatus.DONE, "done late")
    with shop.read() as s:
        assert s.get(Job, old).status == JobStatus.FAILED  # the report stays


def test_the_heartbeat_keeps_a_quiet_job_alive(shop: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "HEARTBEAT", timedelta(seconds=0.05))
    job_id = jobs._open_job(shop, "shop", 10)
    with shop.write() as s:
        s.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow() - STALE_AFTER * 2))
    stop = threading.Event()
    beat = threading.Thread(target=jobs._heartbeat, args=(shop, job_id, stop))
    beat.start()
    try:
        deadline = 100
        while latest_jobs(shop, "shop")[0].status == JobStatus.FAILED and deadline:
            stop.wait(0.05)
            deadline -= 1
        assert latest_jobs(shop, "shop")[0].status == JobStatus.QUEUED
    finally:
        stop.set()
        beat.join(timeout=10)
