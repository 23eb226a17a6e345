"""CIRR: the real val captions and image split map as formats.md says (target_hard and soft 1.0
targets positive, other grades kept aside), the repository layout finds its images, test1 imports
without ground truth, and broken input names the record and writes nothing."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Item, Query
from db.session import Database
from services.core.errors import BundleError
from services.formats.cirr import read_cirr
from services.formats.records import ParsedBundle
from services.ingest.importer import import_bundle
from tests.bundles import png_bytes
from tests.test_formats_common import copy_shared, load_json, shared, table_counts

FILES = ["cap.rc2.val.json", "split.rc2.val.json"]
RECORD_12062 = {
    "pairid": 12062,
    "reference": "dev-63-0-img1",
    "target_hard": "dev-430-3-img0",
    "target_soft": {"dev-430-3-img0": 1.0, "dev-1028-1-img1": -1.0},
    "caption": "Fewer paper towels per pack",
    "img_set": {
        "id": 36,
        "members": [
            "dev-430-3-img0",
            "dev-63-0-img1",
            "dev-1028-1-img1",
            "dev-1028-2-img1",
            "dev-244-0-img0",
            "dev-1028-2-img0",
        ],
        "reference_rank": 4,
        "target_rank": 5,
    },
}
TEST1_RECORD = {
    "pairid": 12064,
    "reference": "test1-83-0-img1",
    "caption": "mirror the image",
    "img_set": {
        "id": 1,
        "members": [
            "test1-147-1-img1",
            "test1-1001-2-img0",
            "test1-83-1-img1",
            "test1-359-0-img1",
            "test1-906-0-img1",
            "test1-83-0-img1",
        ],
        "reference_rank": 4,
    },
}


@pytest.fixture(scope="module")
def val() -> ParsedBundle:
    return read_cirr(shared("cirr"))


def test_val_counts_match_the_files(val: ParsedBundle) -> None:
    captions = load_json("cirr", "cap.rc2.val.json")
    split = load_json("cirr", "split.rc2.val.json")
    bundle = val
    positives = {
        (str(r["pairid"]), name)
        for r in captions
        for name in [r["target_hard"], *(n for n, g in r["target_soft"].items() if g == 1.0)]
    }
    assert len(bundle.queries) == len(captions) == 4181
    assert [i.ext_id for i in bundle.items] == list(split) and len(split) == 2297
    assert {(r.query_ext_id, r.item_ext_id) for r in bundle.qrels} == positives
    assert len(bundle.qrels) == len(positives) == 4258
    assert {r.score for r in bundle.qrels} == {1}


def test_graded_record_maps_verbatim() -> None:
    raw = next(r for r in load_json("cirr", "cap.rc2.val.json") if r["pairid"] == 12062)
    assert raw == RECORD_12062
    bundle = read_cirr(shared("cirr", "cap.rc2.val.json"))
    query = next(q for q in bundle.queries if q.ext_id == "12062")
    assert (query.text, query.ref_items, query.language) == (
        "Fewer paper towels per pack",
        ["dev-63-0-img1"],
        "en",
    )
    assert query.extra == {
        "target_hard": "dev-430-3-img0",
        "target_soft": {"dev-430-3-img0": 1.0, "dev-1028-1-img1": -1.0},
        "img_set": RECORD_12062["img_set"],
        "split": "val",
    }
    # -1.0 is a grade kept in extra, not a positive.
    assert [r.item_ext_id for r in bundle.qrels if r.query_ext_id == "12062"] == ["dev-430-3-img0"]
    assert (query.file, query.line) == ("cap.rc2.val.json", 1)
    item = next(i for i in bundle.items if i.ext_id == "dev-244-0-img0")
    assert item.image.ref == "./dev/dev-244-0-img0.png"


def test_repository_layout_reads_real_images(db: Database, data_dir: Path, tmp_path: Path) -> None:
    """``CIRR/cirr/captions`` + ``CIRR/cirr/image_splits`` + ``CIRR/dev``: images are found."""
    root = tmp_path / "CIRR"
    copy_shared("cirr", ["cap.rc2.val.json"], root / "cirr" / "captions")
    copy_shared("cirr", ["split.rc2.val.json"], root / "cirr" / "image_splits")
    (root / "dev").mkdir()
    (root / "dev" / "dev-244-0-img0.png").write_bytes(png_bytes((10, 20, 30)))
    bundle = read_cirr(root / "cirr" / "captions" / "cap.rc2.val.json")
    assert bundle.root == root.resolve()
    assert read_cirr(root).root == root.resolve()
    report = import_bundle(db, root / "cirr" / "captions" / "cap.rc2.val.json", "cirr-val", format="cirr")
    assert (report.n_items, report.n_queries, report.n_qrels) == (2297, 4181, 4258)
    assert (report.n_images, report.n_missing_images) == (1, 2296)
    with db.read() as s:
        statuses = dict(s.execute(select(Item.ext_id, Item.image_status)).all())
        assert statuses["dev-244-0-img0"] == "ok" and statuses["dev-63-0-img1"] == "missing"
        query = s.scalar(select(Query).where(Query.ext_id == "12062"))
        assert query.extra["target_soft"] == {"dev-430-3-img0": 1.0, "dev-1028-1-img1": -1.0}


def make_test1(folder: Path) -> Path:
    """A one-query CIRR test1 split, from the real record quoted in formats.md."""
    folder.mkdir(parents=True)
    (folder / "cap.rc2.test1.json").write_text(json.dumps([TEST1_RECORD]))
    members = TEST1_RECORD["img_set"]["members"]
    (folder / "split.rc2.test1.json").write_text(json.dumps({m: f"./test1/{m}.png" for m in members}))
    return folder


def test_test1_imports_without_ground_truth(
    db: Database, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = make_test1(tmp_path / "test1")
    with caplog.at_level(logging.WARNING):
        bundle = read_cirr(folder, split="test")
    assert "no ground truth" in caplog.text
    with pytest.raises(BundleError, match=re.escape("found cap.rc2.test1.json: give that file")):
        read_cirr(folder)
    assert [q.ext_id for q in bundle.queries] == ["12064"] and bundle.qrels == []
    assert bundle.queries[0].extra["img_set"]["reference_rank"] == 4
    report = import_bundle(db, folder / "cap.rc2.test1.json", "cirr-test1", format="cirr")
    assert (report.n_items, report.n_queries, report.n_qrels, report.n_missing_images) == (6, 1, 0, 6)


def _truncate(folder: Path) -> None:
    data = (folder / "cap.rc2.val.json").read_bytes()
    (folder / "cap.rc2.val.json").write_bytes(data[:-300])


def _wrong_type(folder: Path) -> None:
    raw = json.loads((folder / "cap.rc2.val.json").read_text())
    raw[9]["target_soft"] = {raw[9]["target_hard"]: "1.0"}
    (folder / "cap.rc2.val.json").write_text(json.dumps(raw))


def _unknown_image(folder: Path) -> None:
    raw = json.loads((folder / "cap.rc2.val.json").read_text())
    raw[2]["reference"] = "train-1-0-img0"
    (folder / "cap.rc2.val.json").write_text(json.dumps(raw))


def _split_value(folder: Path) -> None:
    split = json.loads((folder / "split.rc2.val.json").read_text())
    split["dev-244-0-img0"] = 7
    (folder / "split.rc2.val.json").write_text(json.dumps(split))


@pytest.mark.parametrize(
    ("damage", "file", "message"),
    [
        (_truncate, "cap.rc2.val.json", "the file looks truncated"),
        (_wrong_type, "cap.rc2.val.json", "record 10: field 'target_soft': the grade of"),
        (_unknown_image, "cap.rc2.val.json", "record 3: reference 'train-1-0-img0' is not an image of split"),
        (
            _split_value,
            "split.rc2.val.json",
            "image 'dev-244-0-img0': the value must be a relative image path",
        ),
    ],
)
def test_broken_input_names_the_record_and_writes_nothing(
    db: Database, data_dir: Path, tmp_path: Path, damage, file: str, message: str
) -> None:
    import_bundle(db, make_test1(tmp_path / "test1") / "cap.rc2.test1.json", "cirr-test1", format="cirr")
    before = table_counts(db)
    folder = copy_shared("cirr", FILES, tmp_path / "cirr")
    damage(folder)
    with pytest.raises(BundleError, match=message) as info:
        import_bundle(db, folder, "broken", format="cirr")
    assert info.value.file == file
    assert table_counts(db) == before


def test_not_a_captions_file(tmp_path: Path) -> None:
    folder = copy_shared("cirr", ["cap.ext.rc2.val.json"], tmp_path)
    with pytest.raises(BundleError, match=re.escape("cap.ext.rc2.* are auxiliary captions")):
        read_cirr(folder / "cap.ext.rc2.val.json")
    with pytest.raises(BundleError, match=re.escape("no captions/cap.rc2.val.json")):
        read_cirr(folder)
