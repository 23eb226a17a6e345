"""The admin Ranking page starts the embed + rank job and shows its progress and outcome."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import torch
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from db.models import Candidate, RankerRun
from db.session import Database
from services.datasets.settings import update_settings
from services.ingest.importer import import_bundle
from services.ranking.jobs import latest_jobs
from tests.bundles import make_bundle
from tests.conftest import make_users
from tests.test_ranking import TINY
from ui.session import KEY_USER


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> str:
    """A local checkpoint file of a tiny open_clip model: the path a team without a hub uses."""
    import open_clip

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "qrels-test-tiny.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(folder)
    model = open_clip.create_model("qrels-test-tiny")
    path = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), path)
    return str(path)


def open_page(user) -> AppTest:
    at = AppTest.from_file("../pages/ranking.py", default_timeout=60)
    at.session_state[KEY_USER] = user
    at.session_state["qs_last_seen"] = time.time()
    return at.run()


def test_ranking_page_runs_the_job(sqlite_db: Database, tmp_path: Path, tiny_checkpoint: str) -> None:
    import_bundle(sqlite_db, make_bundle(tmp_path / "b", n_items=8, n_queries=3), "shop")
    update_settings(sqlite_db, "shop", {"clip_model": "qrels-test-tiny", "clip_pretrained": tiny_checkpoint})
    people = make_users(sqlite_db)
    at = open_page(people["admin"])
    assert not at.exception
    assert "qrels-test-tiny" in " ".join(m.value for m in at.markdown)
    at.number_input(key="ranking_k").set_value(5)
    at.button(key="ranking_start").click().run()
    assert not at.exception
    deadline = time.monotonic() + 120
    while (job := latest_jobs(sqlite_db, "shop")[0]).status in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job.status == "done", job.message
    at.run()
    assert "ranked 3 queries" in " ".join(c.value for c in at.caption)
    with sqlite_db.read() as s:
        pooled = s.scalar(
            select(func.count()).select_from(Candidate).join(RankerRun).where(RankerRun.name == "pooled")
        )
    assert pooled > 0


def test_ranking_page_is_for_admins(sqlite_db: Database) -> None:
    people = make_users(sqlite_db)
    at = open_page(people["ann1"])
    assert "You do not have access to this page." in " ".join(e.value for e in at.error)


def test_ranking_page_shows_heartbeats_and_a_dead_job_as_failed(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from db.enums import JobStatus
    from db.models import Dataset, Job, utcnow

    monkeypatch.setenv("QRELS_JOB_STALE_S", "60")
    import_bundle(sqlite_db, make_bundle(tmp_path / "b", n_items=4, n_queries=2), "shop")
    people = make_users(sqlite_db)
    now = utcnow()
    with sqlite_db.write() as s:
        ds_id = s.scalar(select(Dataset.id))
        silent = now - timedelta(minutes=10)
        s.add(  # a job of a server that died ten minutes ago
            Job(
                kind="rank",
                dataset_id=ds_id,
                status=JobStatus.RUNNING,
                message="writing candidates",
                done=10,
                total=40,
                params={"host": "gone"},
                heartbeat_at=silent,
                updated_at=silent,
            )
        )
    at = open_page(people["admin"])
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert re.search(r"no heartbeat for 6\d\d s", errors) and "start it again" in errors
    with sqlite_db.write() as s:  # and one that is alive, half-way
        s.add(
            Job(
                kind="rank",
                dataset_id=ds_id,
                status=JobStatus.RUNNING,
                message="writing candidates",
                done=20,
                total=40,
                params={"host": "elsewhere"},
                heartbeat_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "**running** · heard from" in text
    assert at.get("progress")[0].proto.value == 50
