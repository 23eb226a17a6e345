"""Before/after evaluation: ranx metrics of each stored ranking against original and cleaned labels,
from the database's consensus or from an export folder, and the missed-positive count."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app as cli_app
from db.models import Candidate, Dataset, RankerRun
from db.session import Database
from services.cleaning.evaluation import METRICS, evaluate_dataset, read_export_qrels, score_run
from services.cleaning.policy import Policy
from services.core.errors import NotFoundError, PermissionDenied, ValidationError
from services.export.export import export_dataset
from services.export.options import ExportOptions
from tests.test_consensus import Votes
from tests.test_export import cleaned, shop  # noqa: F401 (fixtures)

# The database rules themselves run on every backend (see the tests without this mark); the rest
# exercise logic above the database and run on SQLite only, to keep the suite quick.
SQLITE_ONLY = pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)

# Rankings of the 10 items for every query, by item ext id, best first.
RANKINGS = {
    "bm25": {
        "q1": ["it7", "it1", "it2", "it3"],  # the missed positive it7 first
        "q2": ["it4", "it3"],
        "q4": ["it5", "it6"],
    },
    "clip_image": {
        "q1": ["it1", "it2", "it3", "it4", "it5", "it6", "it8", "it9", "it10", "it7", "ghost"],
        "q2": ["it1", "it3", "it4"],
    },
    "pooled": {"q1": ["it3", "it2", "it7"], "q2": ["it3", "it4"], "q3": ["it1"]},
}


def add_runs(db: Database, votes: Votes) -> None:
    with db.write() as s:
        dataset_id = s.scalar(select(Dataset.id).where(Dataset.name == "shop"))
        for name, per_query in RANKINGS.items():
            run = RankerRun(dataset_id=dataset_id, name=name, kind="pooled" if name == "pooled" else "ranker")
            s.add(run)
            s.flush()
            for query, items in per_query.items():
                for rank, ext in enumerate(items, start=1):
                    if ext in votes.items:
                        s.add(
                            Candidate(
                                run_id=run.id,
                                query_id=votes.queries[query],
                                item_id=votes.items[ext],
                                rank=rank,
                                score=100.0 - rank,
                            )
                        )


def test_score_run_uses_ranx_and_counts_unranked_queries_as_zero() -> None:
    qrels = {"a": {"x": 1, "y": 1}, "b": {"z": 1}, "c": {"w": 1}}
    run = {"a": {"x": 1.0, "v": 0.5, "y": 1 / 3}, "b": {"u": 1.0, "z": 0.5}, "other": {"w": 1.0}}
    scores = score_run(qrels, run)
    assert set(scores) == set(METRICS)
    assert scores["recall@1"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert scores["recall@5"] == pytest.approx((1 + 1 + 0) / 3)
    assert scores["mrr"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert score_run(qrels, {}) == dict.fromkeys(METRICS, 0.0)


def test_original_and_cleaned_side_by_side(db: Database, cleaned: Votes, users) -> None:  # noqa: F811
    add_runs(db, cleaned)
    report = evaluate_dataset(db, "shop", actor=users["reviewer"])
    assert report.cleaned_from == "policy min=2,query=unanimous,positive=majority"
    # Original: q1 it2 it3, q2 it3 it4, q3 it4 it5, q4 it5 it6; cleaned: q1 it2 it7, q2 it3 it4.
    assert (report.n_original_queries, report.n_cleaned_queries) == (4, 2)
    assert [(r.run, r.labels) for r in report.scores] == [
        ("bm25", "original"),
        ("bm25", "cleaned"),
        ("clip_image", "original"),
        ("clip_image", "cleaned"),
        ("pooled", "original"),
        ("pooled", "cleaned"),
    ]
    scores = {(r.run, r.labels): r.scores for r in report.scores}
    # bm25 ranks the missed positive it7 first for q1: wrong by the original labels, right now.
    assert scores[("bm25", "original")]["mrr"] == pytest.approx((1 / 3 + 1 + 0 + 1) / 4)
    assert scores[("bm25", "cleaned")]["mrr"] == pytest.approx((1 + 1) / 2)
    assert scores[("bm25", "cleaned")]["recall@1"] == pytest.approx((0.5 + 0.5) / 2)
    # clip_image has it7 at rank 10: inside the top 10 but not the top 5.
    assert scores[("clip_image", "cleaned")]["recall@5"] == pytest.approx((0.5 + 1) / 2)
    assert scores[("clip_image", "cleaned")]["recall@10"] == pytest.approx(1.0)
    missed = {m.run: (m.queries, m.of) for m in report.missed}
    assert missed == {"bm25": (1, 1), "clip_image": (1, 1), "pooled": (1, 1)}

    table = report.table()
    assert len(table) == 3 * len(METRICS)
    row = next(r for r in table if r["run"] == "bm25" and r["metric"] == "mrr")
    assert row["delta"] == pytest.approx(row["cleaned"] - row["original"]) and row["delta"] > 0
    assert len(report.long_table()) == 6 * len(METRICS)

    anyone = evaluate_dataset(db, "shop", policy=Policy(min_annotators=1))
    assert anyone.n_cleaned_queries == 3  # q4, with one annotator, joins


@SQLITE_ONLY
def test_cleaned_labels_from_an_export_folder(
    db: Database,
    cleaned: Votes,  # noqa: F811
    tmp_path: Path,
) -> None:
    add_runs(db, cleaned)
    export_dataset(db, "shop", tmp_path / "out", ExportOptions(formats=("trec",)))
    assert read_export_qrels(tmp_path / "out") == {"q1": {"it2": 1, "it7": 1}, "q2": {"it3": 1, "it4": 1}}
    from_folder = evaluate_dataset(db, "shop", export_dir=tmp_path / "out")
    from_db = evaluate_dataset(db, "shop")
    assert from_folder.scores == from_db.scores and from_folder.missed == from_db.missed
    assert from_folder.cleaned_from == str(tmp_path / "out")

    with pytest.raises(NotFoundError, match="holds no qrels"):
        evaluate_dataset(db, "shop", export_dir=tmp_path)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nzz\tit1\t1\n")
    with pytest.raises(ValidationError, match="has query 'zz'"):
        evaluate_dataset(db, "shop", export_dir=stranger)
    (stranger / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tit1\n")
    with pytest.raises(ValidationError, match=r"qrels\.tsv:2: malformed"):
        evaluate_dataset(db, "shop", export_dir=stranger)
    (stranger / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tit1\t0.5\n")
    with pytest.raises(
        ValidationError, match=r"qrels\.tsv:2: malformed qrels line: score '0\.5' is not an integer"
    ):
        evaluate_dataset(db, "shop", export_dir=stranger)


@SQLITE_ONLY
def test_no_runs_no_rows_and_roles(db: Database, shop: Votes, users) -> None:  # noqa: F811
    report = evaluate_dataset(db, "shop")
    assert report.scores == [] and report.missed == [] and report.table() == []
    with pytest.raises(PermissionDenied):
        evaluate_dataset(db, "shop", actor=users["ann1"])
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        evaluate_dataset(db, "nope")


@SQLITE_ONLY
def test_cli_evaluate(db: Database, cleaned: Votes, tmp_path: Path) -> None:  # noqa: F811
    add_runs(db, cleaned)
    result = CliRunner().invoke(cli_app, ["evaluate", "--dataset", "shop"])
    assert result.exit_code == 0, result.output
    assert "original labels: 4 queries; cleaned labels: 2 queries" in result.output
    assert "bm25           mrr            0.5833    1.0000  +0.4167" in result.output
    assert "bm25: 1 of 1 queries with a missed positive have it in the top 10" in result.output
    export_dataset(db, "shop", tmp_path / "out", ExportOptions(formats=("beir",)))
    folder = CliRunner().invoke(cli_app, ["evaluate", "-d", "shop", "--export", str(tmp_path / "out")])
    assert folder.exit_code == 0 and f"({tmp_path / 'out'})" in folder.output
    bad = CliRunner().invoke(cli_app, ["evaluate", "-d", "shop", "--policy", "min=x"])
    assert bad.exit_code == 1 and "min must be a whole number" in bad.output
