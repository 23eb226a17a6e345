"""MCMR: no real record was published beside the code, so these fixtures are built from the field
names its evaluation scripts read (formats.md §1): query.jsonl + candidates.jsonl or candidate.jsonl."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Item, Query
from db.session import Database
from services.core.errors import BundleError
from services.formats.mcmr import read_mcmr
from services.ingest.importer import import_bundle
from tests.bundles import jpeg_bytes, write_jsonl
from tests.test_formats_common import table_counts

CANDIDATES: list[dict[str, Any]] = [
    {
        "candidate_id": "TOP0001",
        "title": "Linen shirt, short sleeves",
        "description": ["Breathable linen.", "Relaxed fit."],
        "features": ["100% linen", "Machine wash"],
        "price": 19.99,
        "Date First Available": "March 3, 2021",
        "images": [
            {
                "thumb": "https://m.media-amazon.com/images/I/41t.jpg",
                "large": "https://m.media-amazon.com/images/I/71lin.jpg",
                "hi_res": None,
            }
        ],
    },
    {
        "candidate_id": "BOTTOM0002",
        "title": "Denim shorts",
        "description": "Mid-rise denim shorts.",
        "features": "Five pockets",
        "images": [{"url": "https://example.com/img/shorts.jpg?size=large"}],
    },
    {"candidate_id": "SHO0003", "title": "Canvas sneakers", "description": [], "images": []},
    {
        "candidate_id": "Jewelry0004",
        "title": "Silver ring",
        "images": [{"hi_res": "https://x.org/a/ring.png"}],
    },
    {"candidate_id": "Furniture0005", "title": "Oak side table", "image_path": "tables/oak.jpg"},
]
QUERIES: list[dict[str, Any]] = [
    {"qid": "q1", "query": "A breathable linen top for summer, under $25", "pos_ids": ["TOP0001"]},
    {"qid": "q2", "query": "Shorts or a shirt for the beach", "pos_ids": ["BOTTOM0002", "TOP0001"]},
    {"id": 3, "text": "A silver ring with a plain band", "positives": ["Jewelry0004"]},
    {"qid": "q4", "query": "A small table in light oak", "pos_ids": []},
]


def make_mcmr(root: Path, candidates_name: str = "candidates.jsonl") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / candidates_name, CANDIDATES)
    write_jsonl(root / "query.jsonl", QUERIES)
    return root


@pytest.mark.parametrize("candidates_name", ["candidates.jsonl", "candidate.jsonl"])
def test_both_spellings_of_the_candidates_file(tmp_path: Path, candidates_name: str) -> None:
    bundle = read_mcmr(make_mcmr(tmp_path / "mcmr", candidates_name))
    assert [i.ext_id for i in bundle.items] == [c["candidate_id"] for c in CANDIDATES]
    assert [q.ext_id for q in bundle.queries] == ["q1", "q2", "3", "q4"]
    assert len(bundle.qrels) == sum(len(q.get("pos_ids") or q.get("positives") or []) for q in QUERIES) == 4
    assert bundle.items[0].file == candidates_name


def test_fields_map_as_the_mcmr_scripts_read_them(tmp_path: Path) -> None:
    bundle = read_mcmr(make_mcmr(tmp_path / "mcmr"))
    top, bottom, shoes, ring, table = bundle.items
    assert (top.title, top.text) == (
        "Linen shirt, short sleeves",
        "Breathable linen.\nRelaxed fit.\n100% linen\nMachine wash",
    )
    assert top.attributes["price"] == 19.99 and top.attributes["Date First Available"] == "March 3, 2021"
    assert [i.category for i in bundle.items] == ["TOP", "BOTTOM", "SHO", "Jewelry", "Furniture"]
    # images/<basename of the first url/large/hi_res>, query strings dropped
    assert [i.image.ref if i.image else None for i in bundle.items] == [
        "images/71lin.jpg",
        "images/shorts.jpg",
        None,
        "images/ring.png",
        "images/oak.jpg",
    ]
    assert (bottom.text, shoes.text) == ("Mid-rise denim shorts.\nFive pockets", "")
    q1, q2, q3, q4 = bundle.queries
    assert (q1.text, q1.category, q1.extra) == (
        "A breathable linen top for summer, under $25",
        "TOP",
        {"domain": "TOP"},
    )
    assert (q2.category, q2.extra) == (None, {"domain": ["BOTTOM", "TOP"]})
    assert (q3.ext_id, q3.text, q3.extra) == ("3", "A silver ring with a plain band", {"domain": "Jewelry"})
    assert q4.extra == {} and [r for r in bundle.qrels if r.query_ext_id == "q4"] == []
    assert [(r.query_ext_id, r.item_ext_id, r.score, r.line) for r in bundle.qrels][:3] == [
        ("q1", "TOP0001", 1, 1),
        ("q2", "BOTTOM0002", 1, 2),
        ("q2", "TOP0001", 1, 2),
    ]
    assert ring.title == "Silver ring" and table.title == "Oak side table"


def test_folder_or_query_file_and_refusals(tmp_path: Path) -> None:
    root = make_mcmr(tmp_path / "mcmr")
    assert len(read_mcmr(root / "query.jsonl").items) == len(CANDIDATES)
    write_jsonl(root / "candidate.jsonl", CANDIDATES)
    with pytest.raises(BundleError, match=re.escape("both candidates.jsonl and candidate.jsonl are present")):
        read_mcmr(root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match=re.escape("no query.jsonl")):
        read_mcmr(empty)
    write_jsonl(empty / "query.jsonl", QUERIES)
    with pytest.raises(BundleError, match=re.escape("no candidates.jsonl (or candidate.jsonl)")):
        read_mcmr(empty)


def test_import_end_to_end(db: Database, data_dir: Path, tmp_path: Path) -> None:
    root = make_mcmr(tmp_path / "mcmr")
    (root / "images").mkdir()
    (root / "images" / "71lin.jpg").write_bytes(jpeg_bytes((200, 180, 150)))
    report = import_bundle(db, root, "mcmr", format="mcmr")
    assert (report.n_items, report.n_queries, report.n_qrels) == (5, 4, 4)
    assert (report.n_images, report.n_missing_images) == (1, 4)
    with db.read() as s:
        statuses = dict(s.execute(select(Item.ext_id, Item.image_status)).all())
        assert statuses == {
            "TOP0001": "ok",
            "BOTTOM0002": "missing",
            "SHO0003": "missing",
            "Jewelry0004": "missing",
            "Furniture0005": "missing",
        }
        assert s.scalar(select(Query.extra).where(Query.ext_id == "q2")) == {"domain": ["BOTTOM", "TOP"]}


def _truncated(root: Path) -> tuple[str, int]:
    data = (root / "query.jsonl").read_bytes()
    (root / "query.jsonl").write_bytes(data[:-15])
    return "query.jsonl", 4


def _wrong_type(root: Path) -> tuple[str, int]:
    write_jsonl(
        root / "candidates.jsonl", [*CANDIDATES[:2], {**CANDIDATES[2], "description": 7}, *CANDIDATES[3:]]
    )
    return "candidates.jsonl", 3


def _unknown_positive(root: Path) -> tuple[str, int]:
    write_jsonl(root / "query.jsonl", [*QUERIES[:1], {**QUERIES[1], "pos_ids": ["TOP9999"]}, *QUERIES[2:]])
    return "query.jsonl", 2


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncated, "invalid JSON"),
        (_wrong_type, "field 'description' must be a string or a list of strings, got int"),
        (_unknown_positive, "qrel for unknown item 'TOP9999'"),
    ],
)
def test_broken_input_names_file_and_line_and_writes_nothing(
    db: Database, data_dir: Path, tmp_path: Path, damage, message: str
) -> None:
    import_bundle(db, make_mcmr(tmp_path / "good"), "good", format="mcmr")
    before = table_counts(db)
    root = make_mcmr(tmp_path / "bad")
    file, line = damage(root)
    with pytest.raises(BundleError, match=message) as info:
        import_bundle(db, root, "bad", format="mcmr")
    assert (info.value.file, info.value.line) == (file, line)
    assert table_counts(db) == before
