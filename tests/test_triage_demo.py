"""Triage on a seeded demo, scored against its planted truth: the ranking job computes it, a
problems-first queue holds more planted problems in its first 20 % than a shuffled one, and the
modality-shortcut flags find the planted single-modality queries.

One small demo (400 items, 60 queries) is built, embedded, ranked and triaged by the ranking job
once for the module. The figures on the 2,000-item demo are bench/bench_triage.py's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from db import migrate
from db.enums import JobStatus
from db.models import Dataset, Query, User
from db.session import Database, dispose_engine
from db.triage import QueryTriage
from demo.shortcuts import SINGLE_MODALITY_SHARE
from demo.triage_truth import front_shares, load_truth, modality_scores
from demo.writer import generate_demo
from models.embedder import DEMO_CHECKPOINT
from services.datasets.assignment import assign
from services.datasets.settings import update_settings
from services.ingest.importer import import_bundle
from services.ranking.jobs import latest_jobs, start_ranking_job
from services.ranking.models import DEMO_SETTINGS
from services.triage.order import pending_queue
from services.triage.views import shortcuts_by_query
from tests.conftest import make_users

pytestmark = pytest.mark.skipif(not DEMO_CHECKPOINT.is_file(), reason="the demo CLIP checkpoint is not built")

SEED = 1


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Path]]:
    root = tmp_path_factory.mktemp("triage-demo")
    url = f"sqlite:///{root / 'demo.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QRELS_DB_URL", url)
        mp.setenv("QRELS_DATA_DIR", str(root / "data"))
        migrate.upgrade(url)
        db = Database(url)
        generate_demo(
            root / "bundle", n_items=400, n_queries=60, seed=SEED, single_modality_share=SINGLE_MODALITY_SHARE
        )
        import_bundle(db, root / "bundle", "demo", is_demo=True)
        update_settings(db, "demo", dict(DEMO_SETTINGS))
        make_users(db)
        job = start_ranking_job(db, "demo", k=50)  # embed, rank, triage
        for _ in range(1200):
            status = latest_jobs(db, "demo")[0]
            if status.status in (JobStatus.DONE, JobStatus.FAILED):
                break
            time.sleep(0.25)
        assert (status.id, status.status) == (job, JobStatus.DONE), status.message
        assert "triaged 60 queries" in status.message
        yield db, root / "bundle"
        dispose_engine(url)


def test_problems_first_holds_more_planted_problems_up_front_than_shuffled(demo) -> None:
    db, bundle = demo
    truth = load_truth(bundle / "truth.jsonl")
    assign(db, "demo", overlap=1, annotators=["ann1"])
    shares = {}
    for order in ("shuffled", "problems_first"):
        update_settings(db, "demo", {"queue_order": order})
        with db.read() as s:
            ext = dict(s.execute(select(Query.id, Query.ext_id)).all())
            ds_id = s.scalar(select(Dataset.id).where(Dataset.name == "demo"))
            ann1 = s.scalar(select(User.id).where(User.name == "ann1"))
            queue = [ext[q] for q in pending_queue(s, ann1, ds_id)]
        assert sorted(queue) == sorted(truth)
        shares[order] = front_shares(queue, truth)
    assert shares["problems_first"]["all"] >= shares["shuffled"]["all"] + 0.1, shares
    for kind in ("false_negative", "wrong_positive", "bad_query"):
        assert shares["problems_first"][kind] >= shares["shuffled"][kind], (kind, shares)


def test_modality_flags_find_the_planted_single_modality_queries(demo) -> None:
    db, bundle = demo
    truth = load_truth(bundle / "truth.jsonl")
    with db.read() as s:
        ext = dict(s.execute(select(Query.id, Query.ext_id)).all())
        ds_id = s.scalar(select(Dataset.id).where(Dataset.name == "demo"))
        flags = {ext[q]: v for q, v in shortcuts_by_query(s, ds_id).items()}
    assert len(flags) == len(truth) == 60
    scores = modality_scores(flags, truth)
    assert scores["image"]["planted"] >= 3 and scores["text"]["planted"] >= 3
    assert scores["image"]["recall"] == 1.0  # every image-only query: the image ranker alone solves it
    assert scores["text"]["recall"] >= 0.5  # BM25 misses a German positive of an English query
    # 0.7: the demo also plants copies of items, and a copy of a positive can outrank it
    assert scores["any"]["recall"] >= 0.7 and scores["any"]["precision"] >= 0.4
    dual = [q for q, line in truth.items() if line["single_modality"] is None]
    assert sum(flags[q] == "neither" for q in dual) >= 0.8 * len(dual)  # what the design asks for


def test_cli_triage_sets_the_order_and_computes_again(demo) -> None:
    db, _ = demo
    result = CliRunner().invoke(
        app, ["triage", "--dataset", "demo", "--order", "problems_first", "--modality-rank", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "triaged 60 queries" in result.output and "r=2" in result.output and "ranker weights" in result.output
    )
    with db.read() as s:
        assert set(s.scalars(select(QueryTriage.shortcut_rank))) == {2}
    refused = CliRunner().invoke(app, ["triage", "--dataset", "demo", "--order", "sideways"])
    assert refused.exit_code == 1 and "queue_order must be one of" in refused.output
