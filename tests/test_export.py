"""Export: every format read back with its own conventions, the round trip through the native
importer, byte-identical repeats, the manifest and changes.csv, sampling, refusals, and the whole
path demo → oracle annotation → export compared with the demo's planted truth."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app as cli_app
from db.models import Dataset, Export, Item, Qrel, Query
from db.session import Database
from demo.writer import generate_demo
from services.annotation.queue import next_assignment
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import load_task
from services.cleaning.policy import Policy
from services.core.errors import PermissionDenied, ValidationError
from services.datasets.assignment import assign
from services.datasets.truth import truth_rows
from services.export.archive import zip_export
from services.export.export import export_dataset
from services.export.options import ExportOptions, parse_options
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle, write_jsonl
from tests.test_consensus import Votes

# The database rules themselves run on every backend (see the tests without this mark); the rest
# exercise logic above the database and run on SQLite only, to keep the suite quick.
SQLITE_ONLY = pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)

PASS_THROUGH = Policy(min_annotators=0)
TEXT_FILES = ("items.jsonl", "queries.jsonl", "qrels.tsv")


def bundle_with_extras(root: Path) -> Path:
    """make_bundle (10 items, 4 queries) plus a query with its own reference image and a 0 qrel."""
    make_bundle(root, n_items=10, n_queries=4)
    queries = [json.loads(line) for line in (root / "queries.jsonl").read_text().splitlines()]
    queries[1]["ref_images"] = ["images/it2.png"]
    queries[3]["text"] = "Finde Artikel 4 — größer"
    write_jsonl(root / "queries.jsonl", queries)
    with (root / "qrels.tsv").open("a") as f:
        f.write("q2\tit9\t0\n")
    return root


@pytest.fixture
def shop(db: Database, tmp_path: Path, data_dir: Path, users) -> Votes:
    import_bundle(db, bundle_with_extras(tmp_path / "bundle"), "shop")
    with db.read() as s:
        items = {ext: i for i, ext in s.execute(select(Item.id, Item.ext_id))}
        queries = {ext: i for i, ext in s.execute(select(Query.id, Query.ext_id))}
    return Votes(db, items, queries)


def apply_cleaning(shop: Votes, users) -> Votes:
    """q1: it3 rejected by both, it7 added by both; q2: rewritten by both; q3: rejected; q4: one annotator."""
    one, two = users["ann1"], users["ann2"]
    cand = {"run_id": 1, "rank": 4, "score": 0.2, "rankers": {"bm25": {"rank": 9, "score": 3.0}}}
    shop.verdict(
        one, "q1", "accept", {"it2": "relevant", "it3": "not_relevant"}, added={"it7": ("candidate", cand)}
    )
    shop.verdict(
        two,
        "q1",
        "accept",
        {"it2": "relevant", "it3": "not_relevant"},
        added={"it7": ("search", {"text": "seven"})},
    )
    for user in (one, two):
        shop.verdict(
            user, "q2", "rewrite", {"it3": "relevant", "it4": "relevant"}, rewrite="Find the second item"
        )
        shop.verdict(user, "q3", "reject", reason="ambiguous")
    shop.verdict(one, "q4", "accept", {"it5": "relevant", "it6": "relevant"})
    return shop


@pytest.fixture
def cleaned(shop: Votes, users) -> Votes:
    return apply_cleaning(shop, users)


def snapshot(db: Database, name: str) -> dict:
    """A dataset's content keyed by benchmark ids, without our row ids or import paths."""
    with db.read() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == name))
        items = s.scalars(select(Item).where(Item.dataset_id == ds.id)).all()
        ext = {it.id: it.ext_id for it in items}
        queries = s.scalars(select(Query).where(Query.dataset_id == ds.id)).all()
        qrels = s.execute(
            select(Query.ext_id, Qrel.item_id, Qrel.score).join(Query).where(Query.dataset_id == ds.id)
        ).all()
        return {
            "items": {
                it.ext_id: (
                    it.title,
                    it.text,
                    it.category,
                    it.language,
                    it.attributes,
                    it.image_sha256,
                    it.image_status,
                )
                for it in items
            },
            "queries": {
                q.ext_id: (
                    q.text,
                    q.category,
                    q.language,
                    q.source,
                    q.group_key,
                    [(ext.get(r.item_id), r.image_sha256) for r in q.refs],
                )
                for q in queries
            },
            "qrels": {(q, ext[i]): score for q, i, score in qrels},
        }


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_beir(folder: Path) -> tuple[dict, dict, dict]:
    """As beir's GenericDataLoader reads a folder: JSON lines, and a qrels TSV whose header it skips."""
    corpus = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        corpus[row["_id"]] = {"text": row["text"], "title": row["title"], "image": row.get("image")}
    queries = {
        row["_id"]: row["text"]
        for row in map(json.loads, (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines())
    }
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
        header = next(reader)
        qrels: dict[str, dict[str, int]] = {}
        for qid, did, score in reader:
            qrels.setdefault(qid, {})[did] = int(score)
    assert header == ["query-id", "corpus-id", "score"]
    return corpus, queries, qrels


def read_trec_qrels(path: Path) -> dict[tuple[str, str], int]:
    """As trec_eval's get_qrels.c parses: exactly 4 whitespace-separated fields, integer rel."""
    qrels = {}
    for line in path.read_text(encoding="ascii").splitlines():
        fields = line.split()
        assert len(fields) == 4, f"trec_eval refuses {line!r}"
        qid, _iter, docno, rel = fields
        assert -127 <= int(rel) <= 127
        qrels[(qid, docno)] = int(rel)
    return qrels


def read_mbeir_qrels(path: Path) -> dict[str, list[str]]:
    """As UniIR's load_qrel: exactly 5 fields, positives (rel > 0) kept."""
    qrels: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        qid, _, did, rel, _task = line.split()
        if int(rel) > 0:
            qrels.setdefault(qid, []).append(did)
    return qrels


# --------------------------------------------------------------------------- round trip


@SQLITE_ONLY
def test_import_export_import_gives_the_same_data(db: Database, shop: Votes, tmp_path: Path) -> None:
    options = ExportOptions(policy=PASS_THROUGH)
    first = export_dataset(db, "shop", tmp_path / "e1", options)
    assert first.counts["queries"]["exported"] == 4 and first.warnings == []
    import_bundle(db, tmp_path / "e1", "shop2")
    assert snapshot(db, "shop2") == snapshot(db, "shop")
    # And again: the re-imported dataset exports to the same files.
    export_dataset(db, "shop2", tmp_path / "e2", options)
    one = files(tmp_path / "e1")
    two = {k.replace("mbeir_shop2_", "mbeir_shop_"): v for k, v in files(tmp_path / "e2").items()}
    assert one.keys() == two.keys()
    differ = sorted(k for k in one if one[k] != two[k])
    assert differ == ["manifest.json"]  # the dataset's name and import time


def test_a_cleaned_export_reimports_as_the_cleaned_split(
    db: Database, cleaned: Votes, tmp_path: Path
) -> None:
    report = export_dataset(db, "shop", tmp_path / "e1")
    import_bundle(db, tmp_path / "e1", "clean")
    data = snapshot(db, "clean")
    assert {q: v[0] for q, v in data["queries"].items()} == {
        "q1": "Find item 1",
        "q2": "Find the second item",
    }
    assert data["queries"]["q1"][5] == [("it1", None)]
    assert data["queries"]["q2"][5][0][0] is None and data["queries"]["q2"][5][0][1]  # its own image
    assert data["qrels"] == {
        ("q1", "it2"): 1,
        ("q1", "it7"): 1,
        ("q1", "it3"): 0,  # the rejected former positive stays, judged not relevant
        ("q2", "it3"): 1,
        ("q2", "it4"): 1,
        ("q2", "it9"): 0,
    }
    assert data["items"] == snapshot(db, "shop")["items"]
    again = export_dataset(db, "clean", tmp_path / "e2", ExportOptions(policy=PASS_THROUGH))
    one = files(tmp_path / "e1")
    two = {k.replace("mbeir_clean_", "mbeir_shop_"): v for k, v in files(tmp_path / "e2").items()}
    assert one.keys() == two.keys()
    # The split's files are the same; tables, changes and manifest describe this export's cleaning.
    for rel in one:
        if not rel.startswith(("tables/", "manifest.json", "changes.csv")):
            assert one[rel] == two[rel], rel
    assert again.counts["queries"]["exported"] == report.counts["queries"]["exported"] == 2


# --------------------------------------------------------------------------- determinism


def test_the_same_database_and_options_give_byte_identical_files(
    db: Database, cleaned: Votes, tmp_path: Path
) -> None:
    options = ExportOptions(size=1, stratify=("language",), seed=3)
    export_dataset(db, "shop", tmp_path / "a" / "out", options)
    export_dataset(db, "shop", tmp_path / "b" / "out", options)
    a, b = files(tmp_path / "a" / "out"), files(tmp_path / "b" / "out")
    assert a == b and len(a) > 20
    assert zip_export(tmp_path / "a" / "out") == zip_export(tmp_path / "b" / "out")
    manifest = json.loads(a["manifest.json"])
    # No clock: the manifest's time is the newest decision (the Votes clock's last tick).
    assert (manifest["time"], manifest["time_source"]) == ("2026-03-01T09:07:00Z", "newest_decision")
    stamped = export_dataset(
        db, "shop", tmp_path / "c", ExportOptions(timestamp=datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC))
    )
    assert (stamped.manifest["time"], stamped.manifest["time_source"]) == ("2027-01-02T03:04:05Z", "option")


@SQLITE_ONLY
def test_the_zip_holds_the_folder(db: Database, shop: Votes, tmp_path: Path) -> None:
    export_dataset(db, "shop", tmp_path / "out", ExportOptions(formats=("native",), policy=PASS_THROUGH))
    with zipfile.ZipFile(io.BytesIO(zip_export(tmp_path / "out"))) as archive:
        names = archive.namelist()
        assert "out/manifest.json" in names and "out/qrels.tsv" in names
        assert archive.read("out/qrels.tsv") == (tmp_path / "out" / "qrels.tsv").read_bytes()


# --------------------------------------------------------------------------- formats


@SQLITE_ONLY
def test_beir_reads_back_with_its_loader_conventions(db: Database, cleaned: Votes, tmp_path: Path) -> None:
    export_dataset(db, "shop", tmp_path / "out")
    corpus, queries, qrels = read_beir(tmp_path / "out" / "beir")
    assert len(corpus) == 10 and set(queries) == {"q1", "q2"} == set(qrels)
    assert queries["q2"] == "Find the second item"
    assert qrels == {"q1": {"it2": 1, "it3": 0, "it7": 1}, "q2": {"it3": 1, "it4": 1, "it9": 0}}
    image = corpus["it1"]["image"]
    assert image.startswith("../images/") and (tmp_path / "out" / "beir" / image).is_file()


@SQLITE_ONLY
def test_trec_qrels_have_four_columns_and_keep_rejected_positives(
    db: Database, cleaned: Votes, tmp_path: Path
) -> None:
    export_dataset(db, "shop", tmp_path / "out", ExportOptions(formats=("trec",)))
    qrels = read_trec_qrels(tmp_path / "out" / "trec" / "qrels-test.txt")
    assert qrels == {
        ("q1", "it2"): 1,
        ("q1", "it3"): 0,
        ("q1", "it7"): 1,
        ("q2", "it3"): 1,
        ("q2", "it4"): 1,
        ("q2", "it9"): 0,
    }
    assert all(
        line.split()[1] == "0" for line in (tmp_path / "out/trec/qrels-test.txt").read_text().splitlines()
    )
    assert not (tmp_path / "out" / "images").exists()  # TREC needs no images


@SQLITE_ONLY
def test_trec_refuses_ids_with_whitespace(db: Database, tmp_path: Path, data_dir: Path, users) -> None:
    root = make_bundle(tmp_path / "b", n_items=6, n_queries=2)
    (root / "qrels.tsv").write_text((root / "qrels.tsv").read_text().replace("q1\t", "q 1\t"))
    (root / "queries.jsonl").write_text((root / "queries.jsonl").read_text().replace('"q1"', '"q 1"'))
    import_bundle(db, root, "spaced")
    with pytest.raises(ValidationError, match="'q 1' contains whitespace"):
        export_dataset(db, "spaced", tmp_path / "out", ExportOptions(policy=PASS_THROUGH))
    assert not (tmp_path / "out").exists() and list(tmp_path.glob(".out.tmp-*")) == []
    report = export_dataset(
        db, "spaced", tmp_path / "out", ExportOptions(formats=("mbeir",), policy=PASS_THROUGH)
    )
    assert report.counts["queries"]["exported"] == 2


@SQLITE_ONLY
def test_mbeir_query_pool_and_both_qrels(db: Database, cleaned: Votes, tmp_path: Path) -> None:
    export_dataset(db, "shop", tmp_path / "out", ExportOptions(formats=("mbeir",), mbeir_dataset_id=12))
    root = tmp_path / "out" / "mbeir"
    id_map = list(csv.DictReader((root / "id_map.tsv").open(encoding="utf-8"), delimiter="\t"))
    qid = {r["id"]: r["mbeir_id"] for r in id_map if r["kind"] == "query"}
    did = {r["id"]: r["mbeir_id"] for r in id_map if r["kind"] == "candidate"}
    assert qid == {"q1": "12:1", "q2": "12:2"} and did["it1"] == "12:1" and did["it10"] == "12:2"

    # q1 refers to pool item it1 and q2 has its own image: both are image+text -> image+text (task 8).
    query_file = root / "query/test/mbeir_shop_task8_test.jsonl"
    pool_file = root / "cand_pool/local/mbeir_shop_task8_cand_pool.jsonl"
    assert sorted(p.name for p in root.rglob("*.jsonl")) == sorted([query_file.name, pool_file.name])
    queries = {q["qid"]: q for q in map(json.loads, query_file.read_text().splitlines())}
    pool = {c["did"]: c for c in map(json.loads, pool_file.read_text().splitlines())}
    q1 = queries["12:1"]
    assert isinstance(q1["query_src_content"], str)
    assert json.loads(q1["query_src_content"]) == {"id": "q1", "ref_images": [], "ref_items": ["it1"]}
    assert q1["query_modality"] == "image,text" and q1["task_id"] == 8
    assert q1["query_img_path"] == pool[did["it1"]]["img_path"]
    assert q1["pos_cand_list"] == [did["it2"], did["it7"]] and q1["neg_cand_list"] == [did["it3"]]
    assert all(isinstance(d, str) for d in q1["pos_cand_list"])
    assert queries["12:2"]["query_txt"] == "Find the second item"
    assert len(pool) == 10 and all((root / c["img_path"]).is_file() for c in pool.values())
    assert json.loads(pool[did["it7"]]["src_content"]) == {"id": "it7"}

    five = read_mbeir_qrels(root / "qrels/test/mbeir_shop_task8_test_qrels.txt")
    assert five == {q: queries[q]["pos_cand_list"] for q in queries}
    four = read_trec_qrels(root / "qrels/test/mbeir_shop_task8_test_qrels.trec.txt")
    assert {k for k, rel in four.items() if rel > 0} == {(q, d) for q, ds in five.items() for d in ds}


@SQLITE_ONLY
def test_csv_and_parquet_tables_agree(db: Database, cleaned: Votes, tmp_path: Path) -> None:
    export_dataset(db, "shop", tmp_path / "out", ExportOptions(formats=("csv", "parquet")))
    tables = tmp_path / "out" / "tables"
    queries = pd.read_csv(tables / "queries.csv")
    assert list(queries["query_id"]) == ["q1", "q2"] and list(queries["rewritten"]) == [False, True]
    assert list(queries["original_text"]) == ["Find item 1", "Find item 2"]
    qrels = pd.read_csv(tables / "qrels.csv", keep_default_na=False)
    assert list(zip(qrels["query_id"], qrels["item_id"], qrels["score"], qrels["decision"], strict=True)) == [
        ("q1", "it2", 1, "kept"),
        ("q1", "it3", 0, "removed"),
        ("q1", "it7", 1, "added"),
        ("q2", "it3", 1, "kept"),
        ("q2", "it4", 1, "kept"),
        ("q2", "it9", 0, "judged_non_relevant"),
    ]
    assert "ann1: candidate (pooled rank 4; bm25 #9)" in qrels["provenance"][2]
    parquet = pd.read_parquet(tables / "qrels.parquet")
    assert parquet.fillna("").astype(str).equals(qrels.astype(str))
    assert pd.read_parquet(tables / "queries.parquet")["text"].tolist() == [
        "Find item 1",
        "Find the second item",
    ]


# --------------------------------------------------------------------------- manifest and changes


@SQLITE_ONLY
def test_manifest_and_changes(db: Database, cleaned: Votes, tmp_path: Path, users) -> None:
    report = export_dataset(db, "shop", tmp_path / "out", actor=users["admin"])
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"].keys() == {f for f in report.files if f != "manifest.json"}
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    assert manifest["policy"] == {"min_annotators": 2, "query_rule": "unanimous", "positive_rule": "majority"}
    assert manifest["seed"] == 0 and manifest["app"]["version"] == "0.1.0"
    assert manifest["dataset"] == {"name": "shop", "source_format": "native"}
    assert manifest["counts"]["queries"] == {
        "total": 4,
        "kept": 2,
        "dropped": {"too_few_annotators": 1, "rejected": 1, "no_positive_left": 0},
        "not_sampled": 0,
        "exported": 2,
        "rewritten": 1,
    }
    assert manifest["counts"]["qrels"] == {
        "positives": 4,
        "positives_added": 1,
        "positives_removed": 1,
        "judged_non_relevant": 2,
    }
    assert manifest["agreement"]["verdict_agreement"] == 1.0
    assert [(d.query_id, d.reason) for d in report.dropped] == [
        ("q3", "rejected"),
        ("q4", "too_few_annotators"),
    ]

    changes = list(csv.DictReader((out / "changes.csv").open(encoding="utf-8")))
    summary = [(c["query_id"], c["change"], c["item_id"], c["reason"]) for c in changes]
    assert summary == [
        ("q1", "positive_removed", "it3", ""),
        ("q1", "positive_added", "it7", ""),
        ("q2", "query_rewritten", "", ""),
        ("q3", "query_removed", "", "rejected"),
        ("q4", "query_removed", "", "too_few_annotators"),
    ]
    added = changes[1]
    assert added["provenance"] == "ann1: candidate (pooled rank 4; bm25 #9); ann2: search 'seven'"
    assert json.loads(added["provenance_detail"])[1] == {
        "by": "ann2",
        "detail": {"text": "seven"},
        "provenance": "search",
    }
    assert (changes[2]["old_text"], changes[2]["new_text"]) == ("Find item 2", "Find the second item")
    assert changes[3]["detail"] == "2 of 2 annotators rejected it (ambiguous)"

    with db.read() as s:
        record = s.scalars(select(Export)).one()
        assert record.out_path == str(out.resolve()) and record.created_by_id == users["admin"].id
        assert record.manifest["files"] == manifest["files"] and record.options["formats"][0] == "native"


@SQLITE_ONLY
def test_sampled_export_lists_the_queries_left_out(db: Database, shop: Votes, tmp_path: Path) -> None:
    report = export_dataset(
        db,
        "shop",
        tmp_path / "out",
        ExportOptions(policy=PASS_THROUGH, size=2, stratify=("category",), seed=5),
    )
    assert report.counts["queries"]["exported"] == 2 and report.counts["queries"]["not_sampled"] == 2
    assert report.manifest["sampling"] == {
        "size": 2,
        "fields": ["category"],
        "strata": [{"key": ["top"], "available": 4, "selected": 2}],
    }
    changes = list(csv.DictReader((tmp_path / "out" / "changes.csv").open()))
    assert [c["reason"] for c in changes] == ["not_sampled", "not_sampled"]
    exported = [json.loads(line)["id"] for line in (tmp_path / "out/queries.jsonl").read_text().splitlines()]
    assert sorted(exported + [c["query_id"] for c in changes]) == ["q1", "q2", "q3", "q4"]


# --------------------------------------------------------------------------- refusals


@SQLITE_ONLY
def test_refusals(db: Database, shop: Votes, tmp_path: Path, users) -> None:
    with pytest.raises(PermissionDenied):
        export_dataset(db, "shop", tmp_path / "x", actor=users["reviewer"])
    with pytest.raises(ValidationError, match="unknown format xml"):
        parse_options(formats="native,xml")
    with pytest.raises(ValidationError, match="needs a sample size"):
        parse_options(stratify="category")
    with pytest.raises(ValidationError, match="cannot stratify over colour"):
        parse_options(size=3, stratify="colour")
    with pytest.raises(ValidationError, match="not an ISO 8601 time"):
        parse_options(time="yesterday")
    with pytest.raises(ValidationError, match="unknown policy key"):
        parse_options(policy="min=1,strict=yes")
    options = parse_options(
        formats="trec, native",
        policy="min=0",
        size=3,
        stratify="language",
        seed=9,
        time="2026-05-01T00:00:00Z",
    )
    assert options.formats == ("native", "trec") and options.policy == PASS_THROUGH and options.size == 3
    assert options.timestamp == datetime(2026, 5, 1, tzinfo=UTC)

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValidationError, match="not empty; choose a new folder or pass --overwrite"):
        export_dataset(db, "shop", busy, ExportOptions(policy=PASS_THROUGH))
    with pytest.raises(ValidationError, match="not an earlier export"):
        export_dataset(db, "shop", busy, ExportOptions(policy=PASS_THROUGH), overwrite=True)
    assert (busy / "notes.txt").read_text() == "mine"
    # An earlier export is replaced only when asked.
    out = tmp_path / "out"
    export_dataset(db, "shop", out, ExportOptions(policy=PASS_THROUGH))
    report = export_dataset(
        db, "shop", out, ExportOptions(formats=("trec",), policy=PASS_THROUGH), overwrite=True
    )
    assert (
        sorted(files(out)) == sorted(report.files) == ["changes.csv", "manifest.json", "trec/qrels-test.txt"]
    )


@SQLITE_ONLY
def test_default_folder_is_under_the_data_dir(db: Database, shop: Votes, data_dir: Path) -> None:
    options = ExportOptions(policy=PASS_THROUGH, formats=("trec",))
    first = export_dataset(db, "shop", None, options)
    assert first.out_dir.parent == (data_dir / "exports" / "shop").resolve()
    again = export_dataset(db, "shop", None, options)  # the same state and options: the same folder
    assert again.out_dir == first.out_dir and files(again.out_dir) == files(first.out_dir)


# --------------------------------------------------------------------------- demo -> oracle -> export


def oracle_annotates(db: Database, annotator, truth: dict[str, dict]) -> None:
    """Label from truth.jsonl: true positives relevant, planted misses added from search."""
    with db.read() as s:
        item_ids = {ext: i for i, ext in s.execute(select(Item.id, Item.ext_id))}
    while (current := next_assignment(db, annotator, "demo")) is not None:
        task = load_task(db, annotator, current)
        t = truth[task.query_ext_id]
        good = set(t["true_positives"])
        if t["bad"]:
            decision = QueryWork(
                labels={}, verdict="reject", reason="unanswerable", client_token=uuid.uuid4().hex
            )
        else:
            labels = {
                c.item_id: LabelInput("relevant" if c.ext_id in good else "not_relevant", "original")
                for c in task.positives
            }
            missed = [item_ids[ext] for ext in t["false_negatives"]]
            for item_id in missed:
                labels[item_id] = LabelInput("relevant", "search", search_text="oracle")
            decision = QueryWork(labels=labels, verdict="accept", client_token=uuid.uuid4().hex)
        submit(db, annotator, current, decision)


def test_demo_oracle_export_matches_the_planted_truth(
    db: Database, tmp_path: Path, data_dir: Path, users
) -> None:
    bundle = tmp_path / "demo"
    generate_demo(bundle, n_items=120, n_queries=30, seed=5)
    import_bundle(db, bundle, "demo", is_demo=True)
    truth = {row["query_id"]: row for row in truth_rows(bundle / "truth.jsonl")}
    assign(db, "demo", overlap=2, annotators=["ann1", "ann2"])
    oracle_annotates(db, users["ann1"], truth)
    oracle_annotates(db, users["ann2"], truth)

    report = export_dataset(db, "demo", tmp_path / "out")
    good = {q for q, t in truth.items() if not t["bad"]}
    bad = set(truth) - good
    assert bad and good
    assert {d.query_id for d in report.dropped} == bad
    assert {d.reason for d in report.dropped} == {"rejected"}

    expected = {(q, i) for q in good for i in truth[q]["true_positives"]}
    exported = {k for k, rel in read_trec_qrels(tmp_path / "out/trec/qrels-test.txt").items() if rel > 0}
    assert exported == expected
    _, _, beir = read_beir(tmp_path / "out" / "beir")
    assert {(q, i) for q, docs in beir.items() for i, rel in docs.items() if rel > 0} == expected
    removed = {(q, i) for q in good for i in truth[q]["wrong_positives"]}
    zeros = {k for k, rel in read_trec_qrels(tmp_path / "out/trec/qrels-test.txt").items() if rel == 0}
    assert zeros == removed
    changes = list(csv.DictReader((tmp_path / "out/changes.csv").open(encoding="utf-8")))
    added = {(c["query_id"], c["item_id"]) for c in changes if c["change"] == "positive_added"}
    assert added == {(q, i) for q in good for i in truth[q]["false_negatives"]}
    assert all("search 'oracle'" in c["provenance"] for c in changes if c["change"] == "positive_added")
    assert {(c["query_id"], c["item_id"]) for c in changes if c["change"] == "positive_removed"} == removed


# --------------------------------------------------------------------------- the command line


@SQLITE_ONLY
def test_cli_export(db: Database, cleaned: Votes, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["export", "--dataset", "shop", "--out", str(out), "--time", "2026-01-01T00:00:00Z"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert "exported 2 of 4 queries of shop" in result.output
    assert "dropped q3: 2 of 2 annotators rejected it (ambiguous)" in result.output
    assert json.loads((out / "manifest.json").read_text())["time"] == "2026-01-01T00:00:00Z"
    again = CliRunner().invoke(cli_app, args)
    assert again.exit_code == 1 and "pass --overwrite" in again.output
    sampled = CliRunner().invoke(
        cli_app,
        [
            *("export", "-d", "shop", "--out", str(tmp_path / "s"), "--formats", "trec", "--policy", "min=1"),
            *("--size", "2", "--stratify", "category", "--seed", "4"),
        ],
    )
    assert sampled.exit_code == 0, sampled.output
    assert "not sampled: 1" in sampled.output and sorted(files(tmp_path / "s")) == [
        "changes.csv",
        "manifest.json",
        "trec/qrels-test.txt",
    ]
    bad = CliRunner().invoke(
        cli_app, ["export", "-d", "shop", "--out", str(tmp_path / "x"), "--stratify", "colour"]
    )
    assert bad.exit_code == 1 and "needs a sample size" in bad.output
