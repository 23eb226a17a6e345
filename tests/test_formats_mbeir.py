"""M-BEIR: the real UniRAG-quoted records map verbatim; the HF layout (query/<split>/,
cand_pool/local/) is found from the root or a query file; broken input names file and line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Query, QueryRef
from db.session import Database
from services.core.errors import BundleError
from services.formats.mbeir import read_mbeir
from services.ingest.importer import import_bundle
from tests.bundles import jpeg_bytes, write_jsonl
from tests.test_formats_common import shared, table_counts


def test_real_records_map_verbatim() -> None:
    raw_query = json.loads(shared("mbeir", "example_query.jsonl").read_text())
    pool_lines = [
        json.loads(line) for line in shared("mbeir", "example_cand_pool.jsonl").read_text().splitlines()
    ]
    bundle = read_mbeir(shared("mbeir"))
    assert (
        [i.ext_id for i in bundle.items]
        == [r["did"] for r in pool_lines]
        == ["9:1", "9:14174", "9:3", "9:14173"]
    )
    assert len(bundle.queries) == 1 and len(bundle.qrels) == len(raw_query["pos_cand_list"]) == 5
    query = bundle.queries[0]
    assert (query.ext_id, query.text, query.category) == ("9:6", "", "MSCOCO")
    assert [src.ref for src in query.ref_images] == [
        "mbeir_images/mscoco_images/val2014/COCO_val2014_000000391895.jpg"
    ]
    assert query.extra == {
        "query_modality": "image",
        "query_src_content": None,
        "neg_cand_list": [],
        "task_id": 3,
        "split": "test",
    }
    assert [r.item_ext_id for r in bundle.qrels] == ["9:2", "9:3", "9:4", "9:5", "9:6"]
    image_item, text_item = bundle.items[0], bundle.items[1]
    assert image_item.image.ref == "mbeir_images/mscoco_images/val2014/COCO_val2014_000000391895.jpg"
    assert (image_item.text, image_item.attributes) == ("", {"modality": "image", "src_content": None})
    assert (text_item.text, text_item.image) == (
        "A man riding on the back of a motorcycle down a road.",
        None,
    )


def test_real_query_names_positives_outside_the_saved_pool(db: Database, data_dir: Path) -> None:
    """Only 4 pool lines were saved, so 9:2 is unknown: the importer refuses and writes nothing."""
    with pytest.raises(BundleError, match="qrel for unknown item '9:2'") as info:
        import_bundle(db, shared("mbeir"), "mbeir", format="mbeir")
    assert (info.value.file, info.value.line) == ("example_query.jsonl", 1)
    assert table_counts(db)["datasets"] == 0


POOL: list[dict[str, Any]] = [
    {"txt": None, "img_path": "mbeir_images/cirr_images/dev/dev-244-0-img0.jpg", "modality": "image",
     "did": "8:1", "src_content": '{"id": "dev-244-0-img0"}'},
    {"txt": None, "img_path": "mbeir_images/cirr_images/dev/dev-1028-1-img1.jpg", "modality": "image",
     "did": "8:2", "src_content": '{"id": "dev-1028-1-img1"}'},
    {"txt": None, "img_path": "mbeir_images/cirr_images/dev/dev-430-3-img0.jpg", "modality": "image",
     "did": "8:3", "src_content": '{"id": "dev-430-3-img0"}'},
]  # fmt: skip
QUERIES: list[dict[str, Any]] = [
    {"qid": "8:1", "query_txt": "show three bottles of soft drink",
     "query_img_path": "mbeir_images/cirr_images/dev/dev-244-0-img0.jpg", "query_modality": "image,text",
     "query_src_content": '{"id": "dev-244-0-img0"}', "pos_cand_list": ["8:2"], "neg_cand_list": ["8:3"],
     "task_id": 7},
    {"qid": "8:2", "query_txt": "Fewer paper towels per pack", "query_img_path": None,
     "query_modality": "text", "query_src_content": None, "pos_cand_list": ["8:3", "8:3"],
     "neg_cand_list": [], "task_id": 7},
]  # fmt: skip


def make_mbeir(root: Path) -> Path:
    (root / "query" / "test").mkdir(parents=True)
    (root / "cand_pool" / "local").mkdir(parents=True)
    write_jsonl(root / "query" / "test" / "mbeir_cirr_task7_test.jsonl", QUERIES)
    write_jsonl(root / "cand_pool" / "local" / "mbeir_cirr_task7_cand_pool.jsonl", POOL)
    return root


def test_hf_layout_from_root_or_query_file(tmp_path: Path) -> None:
    root = make_mbeir(tmp_path / "M-BEIR")
    for path in (root, root / "query" / "test" / "mbeir_cirr_task7_test.jsonl"):
        bundle = read_mbeir(path)
        assert bundle.root == root.resolve()
        assert [i.ext_id for i in bundle.items] == ["8:1", "8:2", "8:3"]
        assert [(r.query_ext_id, r.item_ext_id) for r in bundle.qrels] == [("8:1", "8:2"), ("8:2", "8:3")]
        assert bundle.queries[0].extra["query_src_content"] == '{"id": "dev-244-0-img0"}'
        assert bundle.queries[0].extra["neg_cand_list"] == ["8:3"]
        assert bundle.queries[0].category == "CIRR" and bundle.queries[1].ref_images == []
        assert bundle.queries[0].file == "query/test/mbeir_cirr_task7_test.jsonl"
    write_jsonl(root / "query" / "test" / "mbeir_fashioniq_task7_test.jsonl", [])
    with pytest.raises(BundleError, match=r"2 query files .* pass dataset="):
        read_mbeir(root)
    assert len(read_mbeir(root, dataset="cirr_task7").queries) == 2
    with pytest.raises(
        BundleError, match=re.escape("expected cand_pool/local/mbeir_fashioniq_task7_cand_pool.jsonl")
    ):
        read_mbeir(root, dataset="fashioniq_task7")


def test_import_end_to_end(db: Database, data_dir: Path, tmp_path: Path) -> None:
    root = make_mbeir(tmp_path / "M-BEIR")
    images = root / "mbeir_images" / "cirr_images" / "dev"
    images.mkdir(parents=True)
    (images / "dev-244-0-img0.jpg").write_bytes(jpeg_bytes((9, 99, 199)))
    report = import_bundle(db, root, "mbeir-cirr", format="mbeir")
    assert (report.n_items, report.n_queries, report.n_qrels) == (3, 2, 2)
    assert (report.n_images, report.n_missing_images) == (1, 2)
    with db.read() as s:
        query = s.scalar(select(Query).where(Query.ext_id == "8:1"))
        ref = s.scalar(select(QueryRef).where(QueryRef.query_id == query.id))
        assert (ref.item_id, ref.image_ref, ref.image_status) == (
            None,
            "mbeir_images/cirr_images/dev/dev-244-0-img0.jpg",
            "ok",
        )
        assert query.extra["task_id"] == 7


def _truncated(root: Path) -> None:
    path = root / "cand_pool" / "local" / "mbeir_cirr_task7_cand_pool.jsonl"
    path.write_bytes(path.read_bytes()[:-20])


def _src_content_object(root: Path) -> None:
    broken = {**QUERIES[1], "query_src_content": {"id": "dev-63-0-img1"}}
    write_jsonl(root / "query" / "test" / "mbeir_cirr_task7_test.jsonl", [QUERIES[0], broken])


def _did_objects(root: Path) -> None:
    # The dataset card's {"did": ...} form, which the real files do not use.
    broken = {**QUERIES[0], "pos_cand_list": [{"did": "8:2"}]}
    write_jsonl(root / "query" / "test" / "mbeir_cirr_task7_test.jsonl", [broken, QUERIES[1]])


@pytest.mark.parametrize(
    ("damage", "file", "line", "message"),
    [
        (_truncated, "cand_pool/local/mbeir_cirr_task7_cand_pool.jsonl", 3, "invalid JSON"),
        (_src_content_object, "query/test/mbeir_cirr_task7_test.jsonl", 2, "must be a JSON-encoded string"),
        (
            _did_objects,
            "query/test/mbeir_cirr_task7_test.jsonl",
            1,
            "must hold string or integer ids, found dict",
        ),
    ],
)
def test_broken_input_names_file_and_line_and_writes_nothing(
    db: Database, data_dir: Path, tmp_path: Path, damage, file: str, line: int, message: str
) -> None:
    import_bundle(db, make_mbeir(tmp_path / "good"), "good", format="mbeir")
    before = table_counts(db)
    root = make_mbeir(tmp_path / "bad")
    damage(root)
    with pytest.raises(BundleError, match=message) as info:
        import_bundle(db, root, "bad", format="mbeir")
    assert (info.value.file, info.value.line) == (file, line)
    assert table_counts(db) == before
