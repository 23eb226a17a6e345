"""BEIR: corpus.jsonl, queries.jsonl, qrels/<split>.tsv with its header; only queries the split's
qrels name are kept (as GenericDataLoader does); graded and zero scores survive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Item, Qrel
from db.session import Database
from services.core.errors import BundleError
from services.formats.beir import read_beir
from services.ingest.importer import import_bundle
from tests.bundles import png_bytes, write_jsonl
from tests.test_formats_common import table_counts

CORPUS = [
    {
        "_id": "doc1",
        "title": "Albert Einstein",
        "text": "Albert Einstein was a German-born....",
        "metadata": {},
    },
    {"_id": "doc2", "title": "", "text": "Marie Curie was a physicist."},
    {"_id": 3, "title": "A photo", "text": "", "image": "images/3.png", "modality": "image"},
]
QUERIES = [
    {"_id": "q1", "text": "Who developed the theory of relativity?", "metadata": {}},
    {"_id": "q2", "text": "Who discovered radium?"},
    {"_id": "q-train", "text": "A training query, not in the test qrels"},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\tdoc1\t2\nq1\tdoc2\t0\nq2\tdoc2\t1\nq2\t3\t1\n"


def make_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    write_jsonl(root / "corpus.jsonl", CORPUS)
    write_jsonl(root / "queries.jsonl", QUERIES)
    (root / "qrels" / "test.tsv").write_text(QRELS)
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq-train\tdoc1\t1\n")
    return root


def test_fields_split_filter_and_grades(tmp_path: Path) -> None:
    bundle = read_beir(make_beir(tmp_path / "scifact"))
    assert [(i.ext_id, i.title) for i in bundle.items] == [
        ("doc1", "Albert Einstein"),
        ("doc2", ""),
        ("3", "A photo"),
    ]
    assert bundle.items[0].attributes == {"metadata": {}}
    assert bundle.items[2].image.ref == "images/3.png" and bundle.items[0].image is None
    assert [(q.ext_id, q.text) for q in bundle.queries] == [
        ("q1", "Who developed the theory of relativity?"),
        ("q2", "Who discovered radium?"),
    ]
    assert [(r.query_ext_id, r.item_ext_id, r.score, r.line) for r in bundle.qrels] == [
        ("q1", "doc1", 2, 2),
        ("q1", "doc2", 0, 3),
        ("q2", "doc2", 1, 4),
        ("q2", "3", 1, 5),
    ]
    dev = read_beir(tmp_path / "scifact", split="dev")
    assert [q.ext_id for q in dev.queries] == ["q-train"]
    assert [q.ext_id for q in read_beir(tmp_path / "scifact" / "qrels" / "dev.tsv").queries] == ["q-train"]


def test_import_end_to_end(db: Database, data_dir: Path, tmp_path: Path) -> None:
    root = make_beir(tmp_path / "scifact")
    (root / "images").mkdir()
    (root / "images" / "3.png").write_bytes(png_bytes((1, 1, 1)))
    report = import_bundle(db, root, "beir", format="beir")
    assert (report.n_items, report.n_queries, report.n_qrels) == (3, 2, 4)
    assert (report.n_images, report.n_missing_images) == (1, 2)
    with db.read() as s:
        assert sorted(s.scalars(select(Qrel.score))) == [0, 1, 1, 2]
        assert dict(s.execute(select(Item.ext_id, Item.image_status)).all())["3"] == "ok"


@pytest.mark.parametrize(
    ("damage", "file", "line", "message"),
    [
        (lambda r: (r / "qrels" / "test.tsv").write_text("q1\tdoc1\t1\n"), "qrels/test.tsv", 1, "header"),
        (lambda r: (r / "qrels" / "test.tsv").write_text(QRELS + "q2\tdoc1\t0.5\n"), "qrels/test.tsv", 6, "not an integer"),
        (lambda r: (r / "corpus.jsonl").write_text((r / "corpus.jsonl").read_text()[:-12]), "corpus.jsonl", 3, "invalid JSON"),
        (lambda r: write_jsonl(r / "queries.jsonl", [QUERIES[0], {"_id": "q2", "text": 42}]), "queries.jsonl", 2, "must be a string"),
        (lambda r: (r / "qrels" / "test.tsv").write_text(QRELS + "q9\tdoc1\t1\n"), "qrels/test.tsv", 6, "qrel for unknown query 'q9'"),
    ],
)  # fmt: skip
def test_broken_input_names_file_and_line_and_writes_nothing(
    db: Database, data_dir: Path, tmp_path: Path, damage, file: str, line: int, message: str
) -> None:
    import_bundle(db, make_beir(tmp_path / "good"), "good", format="beir")
    before = table_counts(db)
    root = make_beir(tmp_path / "bad")
    damage(root)
    with pytest.raises(BundleError, match=message) as info:
        import_bundle(db, root, "bad", format="beir")
    assert (info.value.file, info.value.line) == (file, line)
    assert table_counts(db) == before


def test_missing_files(tmp_path: Path) -> None:
    root = make_beir(tmp_path / "d")
    (root / "queries.jsonl").unlink()
    with pytest.raises(BundleError, match=re.escape("no queries.jsonl")):
        read_beir(root)
    with pytest.raises(BundleError, match="is not a BEIR qrels file"):
        read_beir(root / "corpus.jsonl")
