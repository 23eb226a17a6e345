"""An oracle annotates a whole small demo through the services, reading truth.jsonl: every planted
false negative that the pooled candidates contain is found, and bad queries are rejected."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Candidate, Item, Judgment, Query, RankerRun
from db.session import Database
from demo.writer import generate_demo
from models.embedder import DEMO_CHECKPOINT
from services.annotation.queue import next_assignment
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import load_task
from services.datasets.assignment import assign
from services.datasets.settings import update_settings
from services.datasets.truth import truth_rows
from services.ingest.importer import import_bundle
from services.ranking.embed import embed_dataset
from services.ranking.models import DEMO_SETTINGS
from services.ranking.rank import rank_dataset

pytestmark = pytest.mark.skipif(not DEMO_CHECKPOINT.is_file(), reason="the demo CLIP checkpoint is not built")


def load_truth(bundle: Path) -> dict[str, dict]:
    return {row["query_id"]: row for row in truth_rows(bundle / "truth.jsonl")}


@pytest.fixture
def ranked_demo(db: Database, tmp_path: Path, data_dir: Path) -> tuple[Database, Path]:
    bundle = tmp_path / "demo"
    generate_demo(bundle, n_items=400, n_queries=40, seed=11)
    import_bundle(db, bundle, "demo", is_demo=True)
    update_settings(db, "demo", dict(DEMO_SETTINGS))
    embed_dataset(db, "demo")
    rank_dataset(db, "demo", k=50)
    return db, bundle


def test_oracle_finds_every_planted_false_negative_in_the_pool(ranked_demo, users) -> None:
    db, bundle = ranked_demo
    truth = load_truth(bundle)
    me = users["ann1"]
    assign(db, "demo", overlap=1, annotators=["ann1"])
    while (current := next_assignment(db, me, "demo")) is not None:
        task = load_task(db, me, current)
        t = truth[task.query_ext_id]
        good = set(t["true_positives"])
        labels = {
            c.item_id: LabelInput("relevant" if c.ext_id in good else "not_relevant", "original")
            for c in task.positives
        }
        for cand in task.candidates:
            if cand.card.ext_id in good:
                labels[cand.card.item_id] = LabelInput("relevant", "candidate", position=cand.position)
        verdict = "reject" if t["bad"] else "accept"
        submit(
            db,
            me,
            current,
            QueryWork(
                labels=labels,
                verdict=verdict,
                reason="unanswerable" if t["bad"] else None,
                client_token=uuid.uuid4().hex,
            ),
        )

    with db.read() as s:
        ext = dict(s.execute(select(Item.id, Item.ext_id)).all())
        qext = dict(s.execute(select(Query.id, Query.ext_id)).all())
        pooled = s.scalar(select(RankerRun.id).where(RankerRun.name == "pooled"))
        in_pool = {
            (qext[q], ext[i])
            for q, i in s.execute(
                select(Candidate.query_id, Candidate.item_id).where(
                    Candidate.run_id == pooled, Candidate.rank <= 50
                )
            )
        }
        found = {
            (qext[j.query_id], ext[j.item_id])
            for j in s.scalars(
                select(Judgment).where(
                    Judgment.user_id == me.id,
                    Judgment.label == "relevant",
                    Judgment.provenance == "candidate",
                )
            )
        }
        wrong = {
            (qext[j.query_id], ext[j.item_id])
            for j in s.scalars(
                select(Judgment).where(Judgment.label == "not_relevant", Judgment.provenance == "original")
            )
        }
    planted = {(q, i) for q, t in truth.items() for i in t["false_negatives"]}
    reachable = planted & in_pool
    assert planted and reachable, "the demo plants false negatives and the pool holds some"
    assert reachable <= found
    assert len(reachable) / len(planted) >= 0.8  # the pooled candidates reach most planted misses
    planted_wrong = {(q, i) for q, t in truth.items() if not t["bad"] for i in t["wrong_positives"]}
    assert planted_wrong <= wrong
