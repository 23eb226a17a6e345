"""A simulated crowd on the demo: the model policies beat majority against the planted truth, are
deterministic, and the export manifest records the policy, competence and posteriors (SQLite only:
the database rules these read are covered on both backends by tests/test_gold.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_load import CHEAP_HASHER
from db.session import Database
from demo.simulate import profiles_for, score_aggregation, simulate_crowd, true_skill
from demo.writer import generate_demo
from services.cleaning.consensus import compute_consensus
from services.cleaning.policy import Policy
from services.core import auth
from services.core.errors import ValidationError
from services.datasets.settings import update_settings
from services.export.export import export_dataset
from services.export.options import ExportOptions
from services.gold.sources import gold_from_truth
from services.ingest.importer import import_bundle
from tests.bundles import add_pooled_candidates

SQLITE_ONLY = pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)


@pytest.fixture
def crowd(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
    generate_demo(tmp_path / "demo", n_items=150, n_queries=100, seed=3)
    import_bundle(db, tmp_path / "demo", "demo", is_demo=True)
    update_settings(db, "demo", {"truth_path": str(tmp_path / "demo" / "truth.jsonl"), "gold_rate": 10})
    add_pooled_candidates(db, "demo")
    gold_from_truth(db, "demo", count=8, seed=3)
    simulate_crowd(db, "demo", 6, overlap=3, seed=3)
    return db


@SQLITE_ONLY
@pytest.mark.timeout(600)
def test_models_beat_majority_and_rank_the_simulated_annotators(crowd: Database, tmp_path: Path) -> None:
    scores = {sc.method: sc for sc in score_aggregation(crowd, "demo")}
    majority, ds, mace = scores["majority"], scores["dawid_skene"], scores["mace"]
    print({m: (round(s.item_accuracy, 4), round(s.query_accuracy, 4)) for m, s in scores.items()})
    # On the item labels (the export's qrels) both models beat majority; gold anchors them.
    assert ds.item_accuracy > majority.item_accuracy and mace.item_accuracy > majority.item_accuracy
    skill = true_skill(crowd, "demo")
    assert skill["sim-careful"] > skill["sim-sloppy"] > skill["sim-random-clicker"]
    for sc in (ds, mace):  # the careful annotator is trusted more than the random clicker
        assert sc.competence["sim-careful"] > sc.competence["sim-random-clicker"]

    # Deterministic: the same data give the same decisions and posteriors.
    policy = Policy.parse("min=1,model=dawid_skene")
    assert policy.query_rule == policy.positive_rule == "dawid_skene"
    first, again = compute_consensus(crowd, "demo", policy), compute_consensus(crowd, "demo", policy)
    assert first.queries == again.queries and first.competence == again.competence
    assert {c.annotator for c in first.competence} >= {name for name, _ in profiles_for(6)}

    report = export_dataset(crowd, "demo", tmp_path / "out", ExportOptions(formats=("beir",), policy=policy))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["policy"]["positive_rule"] == "dawid_skene"
    assert (
        manifest["aggregation"]["models"] == ["dawid_skene"] and manifest["aggregation"]["gold_queries"] == 8
    )
    items = [d for q in manifest["decisions"] for d in q["items"]]
    assert items and all(d["p_relevant"] is not None for d in items if d["basis"] == "consensus")
    assert all(
        d["positive"] == (d["p_relevant"] > 0.5)
        for d in items
        if d["basis"] == "consensus" and d["p_relevant"] != 0.5
    )
    assert any(q["gold"] for q in manifest["decisions"])
    assert report.manifest == manifest


@SQLITE_ONLY
def test_simulation_needs_planted_truth(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="planted truth"):
        generate_demo(tmp_path / "d", n_items=60, n_queries=5)
        (tmp_path / "d" / "dataset.json").unlink()  # the settings that link the demo's truth
        import_bundle(db, tmp_path / "d", "plain")
        simulate_crowd(db, "plain", 3)
    with pytest.raises(ValidationError):
        profiles_for(0)
