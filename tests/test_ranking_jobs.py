"""Ranking jobs across app processes: one job per dataset whoever starts it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from db.enums import JobStatus
from db.models import Job
from db.session import Database
from services.core import jobs
from services.core.errors import ValidationError
from services.ingest.importer import import_bundle
from services.ranking.jobs import JOB_KIND
from tests.bundles import make_bundle


@pytest.fixture
def shop(db: Database, tmp_path: Path) -> tuple[Database, int]:
    import_bundle(db, make_bundle(tmp_path / "b", n_items=4, n_queries=2), "shop")
    with db.read() as s:
        from services.core.lookups import dataset_id_or_404

        return db, dataset_id_or_404(s, "shop")


def test_concurrent_starts_open_one_job(shop: tuple[Database, int]) -> None:
    """Eight admins on as many processes press "Embed and rank" at once: one job, seven refusals."""
    db, dataset_id = shop
    gate = threading.Barrier(8, timeout=30)
    opened: list[int] = []
    refused: list[str] = []

    def press() -> None:
        gate.wait()
        try:
            opened.append(
                jobs.open_job(
                    db, JOB_KIND, dataset_id, params={"k": 10}, what="'shop'", status=JobStatus.QUEUED
                )
            )
        except ValidationError as e:
            refused.append(str(e))

    threads = [threading.Thread(target=press) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(opened) == 1 and len(refused) == 7
    assert all(f"already running (job {opened[0]})" in r for r in refused)
    with db.read() as s:
        assert s.scalars(select(Job.status)).all() == [JobStatus.QUEUED]
