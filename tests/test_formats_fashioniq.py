"""FashionIQ: every category of a split, ``candidate`` as the reference image, synthesized query ids,
the union of the split files as the gallery; test has no targets; broken input names the record."""

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
from services.formats.fashioniq import read_fashioniq
from services.formats.records import ParsedBundle
from services.ingest.importer import import_bundle
from tests.bundles import jpeg_bytes
from tests.test_formats_common import copy_shared, load_json, shared, table_counts

CATEGORIES = ("dress", "shirt", "toptee")


@pytest.fixture(scope="module")
def val() -> ParsedBundle:
    return read_fashioniq(shared("fashioniq"))


def test_val_counts_match_the_files(val: ParsedBundle) -> None:
    captions = {c: load_json("fashioniq", f"cap.{c}.val.json") for c in CATEGORIES}
    gallery = {a for c in CATEGORIES for a in load_json("fashioniq", f"split.{c}.val.json")}
    bundle = val
    assert len(bundle.queries) == sum(len(v) for v in captions.values()) == 6016
    assert len(bundle.qrels) == len(bundle.queries)  # one target per pair
    assert {i.ext_id for i in bundle.items} == gallery and len(bundle.items) == len(gallery) == 15415
    assert [q.category for q in bundle.queries] == [c for c in CATEGORIES for _ in captions[c]]
    # An ASIN in two categories' galleries is one item that remembers both.
    in_two = [i for i in bundle.items if len(i.attributes["categories"]) > 1]
    assert len(in_two) == 121


def test_val_record_maps_verbatim(val: ParsedBundle) -> None:
    raw = load_json("fashioniq", "cap.dress.val.json")[0]
    assert raw == {
        "target": "B0084Y8XIU",
        "candidate": "B005X4PL1G",
        "captions": ["is shiny and silver with shorter sleeves", "fit and flare"],
    }
    bundle = val
    query = bundle.queries[0]
    assert (query.ext_id, query.category, query.ref_items) == ("dress.val.0", "dress", ["B005X4PL1G"])
    assert query.text == "is shiny and silver with shorter sleeves and fit and flare"
    assert query.extra == {"captions": raw["captions"], "split": "val", "index": 0}
    assert (bundle.qrels[0].query_ext_id, bundle.qrels[0].item_ext_id) == ("dress.val.0", "B0084Y8XIU")
    assert (query.file, query.line) == ("cap.dress.val.json", 2)
    target = next(i for i in bundle.items if i.ext_id == "B0084Y8XIU")
    assert (target.image.ref, target.category) == ("images/B0084Y8XIU.jpg", "dress")


def test_test_split_keeps_raw_captions_and_has_no_qrels(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        bundle = read_fashioniq(shared("fashioniq"), split="test", categories=("dress",))
    assert "no ground truth" in caplog.text
    raw = load_json("fashioniq", "cap.dress.test.json")
    assert raw[0] == {"candidate": "B007E66YTO", "captions": [" yello and more flowing", "short and black"]}
    assert len(bundle.queries) == len(raw) and bundle.qrels == []
    first = bundle.queries[0]
    assert (first.ext_id, first.text) == ("dress.test.0", "yello and more flowing and short and black")
    assert first.extra["captions"] == [" yello and more flowing", "short and black"]
    assert len(bundle.items) == len(load_json("fashioniq", "split.dress.test.json"))


def test_one_file_repository_layout_and_png_images(tmp_path: Path) -> None:
    root = tmp_path / "fashion-iq"
    copy_shared("fashioniq", ["cap.shirt.val.json"], root / "captions")
    copy_shared("fashioniq", ["split.shirt.val.json"], root / "image_splits")
    (root / "images").mkdir()
    first = load_json("fashioniq", "split.shirt.val.json")[0]
    (root / "images" / f"{first}.png").write_bytes(jpeg_bytes((1, 2, 3)))
    bundle = read_fashioniq(root / "captions" / "cap.shirt.val.json")
    assert bundle.root == root.resolve()
    assert {q.category for q in bundle.queries} == {"shirt"}
    assert bundle.items[0].image.ref == f"images/{first}.png"
    assert bundle.items[1].image.ref.endswith(".jpg")
    assert len(read_fashioniq(root).queries) == len(bundle.queries)


def test_import_end_to_end_with_placeholders(db: Database, data_dir: Path) -> None:
    report = import_bundle(db, shared("fashioniq"), "fiq-val", format="fashioniq")
    assert (report.n_items, report.n_queries, report.n_qrels) == (15415, 6016, 6016)
    assert report.n_missing_images == 15415
    with db.read() as s:
        assert set(s.scalars(select(Item.image_status))) == {"missing"}
        query = s.scalar(select(Query).where(Query.ext_id == "toptee.val.3"))
        assert query.category == "toptee" and len(query.refs) == 1


def make_tiny(folder: Path) -> Path:
    """The first three real dress pairs and a gallery of just their images."""
    folder.mkdir(parents=True)
    pairs = load_json("fashioniq", "cap.dress.val.json")[:3]
    (folder / "cap.dress.val.json").write_text(json.dumps(pairs))
    gallery = sorted({p["candidate"] for p in pairs} | {p["target"] for p in pairs})
    (folder / "split.dress.val.json").write_text(json.dumps(gallery))
    return folder


def test_tiny_split(tmp_path: Path) -> None:
    bundle = read_fashioniq(make_tiny(tmp_path / "tiny"))
    assert (len(bundle.items), len(bundle.queries), len(bundle.qrels)) == (6, 3, 3)


def _truncate(folder: Path) -> None:
    data = (folder / "cap.shirt.val.json").read_bytes()
    (folder / "cap.shirt.val.json").write_bytes(data[:-100])


def _wrong_type(folder: Path) -> None:
    raw = json.loads((folder / "cap.shirt.val.json").read_text())
    raw[6]["captions"] = "is blue"
    (folder / "cap.shirt.val.json").write_text(json.dumps(raw, indent=4))


def _outside_gallery(folder: Path) -> None:
    raw = json.loads((folder / "cap.shirt.val.json").read_text())
    raw[1]["target"] = "B000000000"
    (folder / "cap.shirt.val.json").write_text(json.dumps(raw, indent=4))


@pytest.mark.parametrize(
    ("damage", "message", "line"),
    [
        (_truncate, "the file looks truncated", None),
        (_wrong_type, "record 7: field 'captions' must be a list of strings", 6 * 8 + 2),
        (_outside_gallery, "record 2: target 'B000000000' is not in the gallery", 1 * 8 + 2),
    ],
)
def test_broken_input_names_the_record_and_writes_nothing(
    db: Database, data_dir: Path, tmp_path: Path, damage, message: str, line: int | None
) -> None:
    import_bundle(db, make_tiny(tmp_path / "tiny"), "fiq-tiny", format="fashioniq")
    before = table_counts(db)
    folder = copy_shared("fashioniq", ["cap.shirt.val.json", "split.shirt.val.json"], tmp_path / "fiq")
    damage(folder)
    with pytest.raises(BundleError, match=message) as info:
        import_bundle(db, folder, "broken", format="fashioniq")
    assert info.value.file == "cap.shirt.val.json"
    if line is not None:  # indent-4 records of 8 lines each
        assert info.value.line == line
    assert table_counts(db) == before


def test_missing_split_file_and_unknown_category(tmp_path: Path) -> None:
    folder = copy_shared("fashioniq", ["cap.dress.val.json"], tmp_path)
    with pytest.raises(BundleError, match=re.escape("no image_splits/split.dress.val.json")):
        read_fashioniq(folder)
    with pytest.raises(BundleError, match=re.escape("no captions file cap.shoes.val.json")):
        read_fashioniq(folder, categories=("shoes",))
