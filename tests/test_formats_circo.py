"""CIRCO: the real val/test annotation files map onto items, queries and qrels as formats.md says,
import end to end with placeholder images, and broken files name the record and leave the DB be."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Item, Qrel, Query
from db.session import Database
from services.core.errors import BundleError
from services.formats.circo import read_circo
from services.ingest.importer import import_bundle
from tests.test_formats_common import copy_shared, load_json, shared, table_counts

VAL_RECORD_1 = {
    "reference_img_id": 283001,
    "target_img_id": 574778,
    "relative_caption": "has a dog of a different breed and shows a jolly roger",
    "shared_concept": "a dog with a hat",
    "gt_img_ids": [574778, 207836, 420715],
    "id": 1,
    "semantic_aspects": ["statement_with_conjunction", "compare_change", "addition"],
}


def test_val_counts_match_the_file() -> None:
    raw = load_json("circo", "val.json")
    bundle = read_circo(shared("circo"))
    pool = {str(r["reference_img_id"]) for r in raw} | {str(i) for r in raw for i in r["gt_img_ids"]}
    assert len(bundle.queries) == len(raw) == 220
    assert len(bundle.qrels) == sum(len(r["gt_img_ids"]) for r in raw) == 916
    assert {i.ext_id for i in bundle.items} == pool and len(bundle.items) == len(pool) == 1121
    assert bundle.format == "circo" and bundle.allow_missing_images


def test_val_record_maps_verbatim() -> None:
    assert load_json("circo", "val.json")[1] == VAL_RECORD_1
    bundle = read_circo(shared("circo", "val.json"))
    query = bundle.queries[1]
    assert (query.ext_id, query.text, query.ref_items) == (
        "1",
        "has a dog of a different breed and shows a jolly roger",
        ["283001"],
    )
    assert query.extra == {
        "target_img_id": "574778",
        "shared_concept": "a dog with a hat",
        "semantic_aspects": ["statement_with_conjunction", "compare_change", "addition"],
        "split": "val",
    }
    assert [(r.item_ext_id, r.score) for r in bundle.qrels if r.query_ext_id == "1"] == [
        ("574778", 1),
        ("207836", 1),
        ("420715", 1),
    ]
    assert (query.file, query.line) == ("val.json", 20)
    item = next(i for i in bundle.items if i.ext_id == "574778")
    assert item.image is not None and item.image.ref == "unlabeled2017/000000574778.jpg"


def test_test_split_has_no_ground_truth_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    raw = load_json("circo", "test.json")
    with caplog.at_level(logging.WARNING):
        bundle = read_circo(shared("circo"), split="test")
    assert "no ground truth" in caplog.text and "hidden" in caplog.text
    assert len(bundle.queries) == len(raw) == 800 and bundle.qrels == []
    assert len(bundle.items) == len({r["reference_img_id"] for r in raw}) == 798
    first = bundle.queries[0]
    assert (first.ext_id, first.text, first.ref_items) == (
        "0",
        "has a higher quality and is taken during the daytime",
        ["281438"],
    )
    assert first.extra == {"shared_concept": "a man sitting on an outdoor toilet", "split": "test"}


def test_repository_layout_and_images_folder(tmp_path: Path) -> None:
    root = tmp_path / "CIRCO"
    copy_shared("circo", ["val.json"], root / "annotations")
    (root / "COCO2017_unlabeled" / "unlabeled2017").mkdir(parents=True)
    for path in (root, root / "annotations" / "val.json"):
        bundle = read_circo(path)
        assert bundle.root == root.resolve()
        assert bundle.items[0].image.ref == "COCO2017_unlabeled/unlabeled2017/000000271520.jpg"
        assert bundle.queries[0].file == "annotations/val.json"


def test_missing_split_and_mismatched_split(tmp_path: Path) -> None:
    copy_shared("circo", ["test.json"], tmp_path)
    with pytest.raises(
        BundleError, match=r"no annotations/val.json or val.json .*found test.json: give that file"
    ):
        read_circo(tmp_path)
    with pytest.raises(BundleError, match="the file is the 'test' split but split='val'"):
        read_circo(tmp_path / "test.json", split="val")


def test_import_end_to_end_with_placeholders(db: Database, data_dir: Path) -> None:
    report = import_bundle(db, shared("circo"), "circo-val", format="circo")
    assert (report.n_items, report.n_queries, report.n_qrels) == (1121, 220, 916)
    assert report.n_missing_images == 1121 and report.n_images == 0
    with db.read() as s:
        assert set(s.scalars(select(Item.image_status))) == {"missing"}
        query = s.scalar(select(Query).where(Query.ext_id == "1"))
        assert query.extra["shared_concept"] == "a dog with a hat"
        assert [ref.item_id for ref in query.refs] == [
            s.scalar(select(Item.id).where(Item.ext_id == "283001"))
        ]
        assert (
            s.scalar(select(Item.image_ref).where(Item.ext_id == "283001"))
            == "unlabeled2017/000000283001.jpg"
        )
        n_qrels = len(s.scalars(select(Qrel.id).where(Qrel.query_id == query.id)).all())
        assert n_qrels == 3


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _wrong_type(path: Path) -> None:
    raw = json.loads(path.read_text())
    raw[4]["gt_img_ids"] = "574778"
    path.write_text(json.dumps(raw, indent=4))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, "the file looks truncated"),
        (_wrong_type, "record 5: field 'gt_img_ids' must be a list of ids, got str"),
    ],
)
def test_broken_file_names_the_record_and_writes_nothing(
    db: Database, data_dir: Path, tmp_path: Path, damage, message: str
) -> None:
    import_bundle(db, shared("circo"), "circo-val", format="circo")
    before = table_counts(db)
    folder = copy_shared("circo", ["val.json"], tmp_path / "circo")
    damage(folder / "val.json")
    with pytest.raises(BundleError, match=message) as info:
        import_bundle(db, folder, "broken", format="circo")
    assert info.value.file == "val.json" and info.value.line is not None
    if damage is _wrong_type:  # the line where record 5 starts
        starts = [
            n for n, text in enumerate((folder / "val.json").read_text().splitlines(), 1) if text == "    {"
        ]
        assert info.value.line == starts[4]
    assert table_counts(db) == before
