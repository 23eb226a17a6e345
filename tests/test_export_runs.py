"""Export for evaluation tools: each stored ranking as a TREC run that ranx reads back to the app's
own metrics, and the audit that fails an export whose files name ids its corpus or queries lack."""

from __future__ import annotations

from pathlib import Path

import pytest
from ranx import Qrels, Run, evaluate
from sqlalchemy import select

from db.models import Candidate, Dataset, Item, RankerRun
from db.session import Database
from services.cleaning.evaluation import CLEANED, METRICS, evaluate_dataset
from services.core.errors import ValidationError
from services.export.export import export_dataset
from services.export.options import ExportOptions
from services.export.validate import check_export_ids
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle
from tests.test_consensus import Votes
from tests.test_evaluation import RANKINGS, add_runs
from tests.test_export import PASS_THROUGH, SQLITE_ONLY, cleaned, shop  # noqa: F401 (fixtures)


def _trec_run(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="ascii").splitlines()]


@SQLITE_ONLY
def test_runs_are_trec_files_that_ranx_scores_as_the_app_does(
    db: Database,
    cleaned: Votes,  # noqa: F811
    tmp_path: Path,
) -> None:
    add_runs(db, cleaned)
    out = tmp_path / "out"
    report = export_dataset(db, "shop", out)
    assert {f for f in report.files if f.startswith("runs/")} == {f"runs/{name}.trec" for name in RANKINGS}
    bm25 = _trec_run(out / "runs" / "bm25.trec")
    assert all(len(row) == 6 and row[1] == "Q0" and row[5] == "bm25" for row in bm25)
    # Only the exported queries (q3 was rejected, q4 had one annotator), best first, scores falling.
    assert {row[0] for row in bm25} == {"q1", "q2"}
    q1 = [row for row in bm25 if row[0] == "q1"]
    assert [row[2] for row in q1] == RANKINGS["bm25"]["q1"] and [row[3] for row in q1] == ["1", "2", "3", "4"]
    assert [float(row[4]) for row in q1] == sorted((float(row[4]) for row in q1), reverse=True)

    app = evaluate_dataset(db, "shop", export_dir=out)
    qrels = Qrels.from_file(str(out / "trec" / "qrels-test.txt"), kind="trec")
    for name in RANKINGS:
        run = Run.from_file(str(out / "runs" / f"{name}.trec"), kind="trec")
        ours = next(r.scores for r in app.scores if r.run == name and r.labels == CLEANED)
        theirs = evaluate(qrels, run, list(METRICS), make_comparable=True)
        assert {m: pytest.approx(float(theirs[m])) for m in METRICS} == ours, name


@SQLITE_ONLY
def test_runs_come_with_the_trec_format_only(
    db: Database,
    cleaned: Votes,  # noqa: F811
    tmp_path: Path,
) -> None:
    add_runs(db, cleaned)
    report = export_dataset(db, "shop", tmp_path / "native", ExportOptions(formats=("native", "beir")))
    assert not [f for f in report.files if f.startswith("runs/")]


def _foreign_item(db: Database, tmp_path: Path) -> int:
    """An item of another dataset whose id ('it12') the shop (10 items) does not have."""
    import_bundle(db, make_bundle(tmp_path / "other", n_items=12, n_queries=1), "other")
    with db.read() as s:
        return s.scalar(select(Item.id).join(Dataset).where(Dataset.name == "other", Item.ext_id == "it12"))


@SQLITE_ONLY
def test_an_export_naming_ids_outside_its_corpus_fails_and_writes_nothing(
    db: Database,
    shop: Votes,  # noqa: F811
    tmp_path: Path,
) -> None:
    add_runs(db, shop)
    foreign = _foreign_item(db, tmp_path)
    with db.write() as s:  # a ranking that points into another dataset's pool
        run_id = s.scalar(select(RankerRun.id).where(RankerRun.name == "bm25"))
        s.add(Candidate(run_id=run_id, query_id=shop.queries["q1"], item_id=foreign, rank=5, score=0.0))
    out = tmp_path / "out"
    with pytest.raises(
        ValidationError, match=r"runs/bm25\.trec names items 'it12' missing from items\.jsonl"
    ):
        export_dataset(db, "shop", out, ExportOptions(policy=PASS_THROUGH))
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))

    with pytest.raises(
        ValidationError, match=r"runs/bm25\.trec names items 'it12' missing from the exported pool"
    ):
        export_dataset(db, "shop", out, ExportOptions(formats=("trec",), policy=PASS_THROUGH))
    assert not out.exists()


def test_the_audit_names_every_missing_id(tmp_path: Path) -> None:
    class Pool:
        items: list = []

    class FakeSplit:
        pool = Pool()
        queries: list = []

    from services.export.folder import Folder

    folder = Folder(tmp_path)
    folder.text("items.jsonl", "".join(f'{{"id": "it{n}"}}\n' for n in range(3)))
    folder.text("queries.jsonl", '{"id": "q1", "ref_items": ["it0", "gone"]}\n')
    rows = "".join(f"q1\tx{n}\t1\n" for n in range(12))
    folder.text("qrels.tsv", "query-id\tcorpus-id\tscore\nq9\tit1\t1\n" + rows)
    with pytest.raises(ValidationError) as err:
        check_export_ids(folder, FakeSplit())  # type: ignore[arg-type]
    message = str(err.value)
    assert "qrels.tsv names items 'x0', 'x1', 'x10', 'x11', 'x2'" in message and "and 2 more" in message
    assert "qrels.tsv names queries 'q9' missing from queries.jsonl" in message
    assert "queries.jsonl names reference items 'gone'" in message
