"""MERIT: queries are JSON Lines under a .json name, ``query`` keys (in order) are the referenced
products, ids are ints in queries and strings in products; the real example records map verbatim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Item, Query
from db.session import Database
from services.core.errors import BundleError
from services.formats.merit import read_merit
from services.ingest.importer import import_bundle
from tests.bundles import write_jsonl
from tests.test_formats_common import shared, table_counts

EXAMPLE_QUERY_FILE = "example_query_from_compose_query_comment.jsonl"
EXAMPLE_PRODUCT_FILE = "example_product_from_compose_query_comment.jsonl"


def test_real_example_records_map_verbatim() -> None:
    raw_query = json.loads(shared("merit", EXAMPLE_QUERY_FILE).read_text(encoding="utf-8"))
    raw_product = json.loads(shared("merit", EXAMPLE_PRODUCT_FILE).read_text(encoding="utf-8"))
    bundle = read_merit(shared("merit"))
    assert (len(bundle.items), len(bundle.queries)) == (1, 1)
    assert len(bundle.qrels) == len(raw_query["pos_candidate"]) == 1
    query = bundle.queries[0]
    assert query.ext_id == "1"  # the line: MERIT queries carry no id
    assert query.text == raw_query["query instruction"]
    assert query.text.startswith(
        "Find a product of handbag that has the same product style with <Product 1> <image>\nTúi"
    )
    assert query.ref_items == ["1731689392940156946", "1730019307228531271"]
    assert query.extra == {
        "query": {
            "1731689392940156946": {"product style": "as product image"},
            "1730019307228531271": {"color": "blue"},
        },
        "hard_negative": [],
        "split": "test",
    }
    assert [(r.query_ext_id, r.item_ext_id, r.score) for r in bundle.qrels] == [
        ("1", "1732018626492074002", 1)
    ]
    product = bundle.items[0]
    assert product.ext_id == str(raw_product["sku_id"]) == "1729996664698341498"
    assert (
        product.title
        == "Sporty Nylon Laptop Backpack with Wearproof Design for Travel and Outdoor Activities"
    )
    assert product.text.startswith("Name:Fashion Daily Laptop Bag Wearproof")
    assert (product.language, product.attributes["country"]) == ("en", "PH")
    assert product.attributes["attribute"] == {"style": "sport"}
    assert product.image.ref == "images/1729996664698341498.jpg"


def test_real_example_is_refused_by_the_importer_for_its_missing_products(
    db: Database, data_dir: Path
) -> None:
    """The saved example holds one product and a query over three others: nothing is written."""
    with pytest.raises(BundleError, match="ref_items names unknown item '1731689392940156946'") as info:
        import_bundle(db, shared("merit"), "merit", format="merit")
    assert (info.value.file, info.value.line) == (EXAMPLE_QUERY_FILE, 1)
    assert table_counts(db)["datasets"] == 0


PRODUCTS: list[dict[str, Any]] = [
    {"idx": "101", "title": "Tas tangan kulit", "class": "handbag", "language": "id", "country": "ID",
     "attribute": {"color": "brown"}, "image": "imgs/101.jpg"},
    {"idx": "102", "title": "Giày thể thao", "class": "shoes", "language": "vi", "country": "VN",
     "attribute": {"color": "blue"}},
    {"idx": "103", "title": "Blue leather handbag", "class": "handbag", "language": "en", "country": "PH",
     "attribute": {"color": "blue", "material": "leather"}},
    {"idx": "104", "title": "Brown canvas handbag", "class": "handbag", "language": "en", "country": "PH",
     "attribute": {"color": "brown"}},
]  # fmt: skip
QUERIES: list[dict[str, Any]] = [
    {
        "query": {"101": {"product style": "as product image"}, "102": {"color": "blue"}},
        "pos_candidate": [103],
        "hard_negative": [104],
        "query instruction": "Find a handbag in the style of <Product 1> <image>\nTas tangan kulit </Product 1> "
        "and the color of <Product 2> <image>\nGiày thể thao </Product 2>",
    },
    {
        "query": {"103": {"material": "leather"}},
        "pos_candidate": [101, 104],
        "hard_negative": [],
        "query instruction": "A handbag of the same material as <Product 1> <image>\nBlue leather handbag </Product 1>",
    },
]


def make_merit(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "products-test.jsonl", PRODUCTS)
    # Written like MERIT's own files: json.dumps per line, non-ASCII escaped, under a .json name.
    (root / "queries-test.json").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    return root


def test_released_layout_reads_ints_against_string_ids(tmp_path: Path) -> None:
    bundle = read_merit(make_merit(tmp_path / "merit"))
    assert [i.ext_id for i in bundle.items] == ["101", "102", "103", "104"]
    assert [(i.category, i.language) for i in bundle.items][:2] == [("handbag", "id"), ("shoes", "vi")]
    assert bundle.items[0].image.ref == "imgs/101.jpg" and bundle.items[1].image.ref == "images/102.jpg"
    q1, _ = bundle.queries
    assert (q1.ext_id, q1.ref_items, q1.category, q1.language) == ("1", ["101", "102"], "handbag", "en")
    assert q1.extra["hard_negative"] == ["104"]
    assert "Giày thể thao" in q1.text
    assert [(r.query_ext_id, r.item_ext_id) for r in bundle.qrels] == [
        ("1", "103"),
        ("2", "101"),
        ("2", "104"),
    ]
    assert read_merit(tmp_path / "merit" / "queries-test.json").queries[1].ref_items == ["103"]


def test_import_end_to_end(db: Database, data_dir: Path, tmp_path: Path) -> None:
    report = import_bundle(db, make_merit(tmp_path / "merit"), "merit", format="merit")
    assert (report.n_items, report.n_queries, report.n_qrels, report.n_missing_images) == (4, 2, 3, 4)
    with db.read() as s:
        assert set(s.scalars(select(Item.image_status))) == {"missing"}
        query = s.scalar(select(Query).where(Query.ext_id == "1"))
        ids = dict(s.execute(select(Item.id, Item.ext_id)).all())
        assert [ids[r.item_id] for r in query.refs] == ["101", "102"]


@pytest.mark.parametrize(
    ("damage", "file", "line", "message"),
    [
        (lambda r: (r / "queries-test.json").write_text(json.dumps(QUERIES[0]) + "\n" + json.dumps(QUERIES[1])[:-9]),
         "queries-test.json", 2, "invalid JSON"),
        (lambda r: write_jsonl(r / "queries-test.json", [QUERIES[0], {**QUERIES[1], "pos_candidate": [1.5]}]),
         "queries-test.json", 2, "field 'pos_candidate' must hold string or integer ids, found float"),
        (lambda r: write_jsonl(r / "products-test.jsonl", [*PRODUCTS[:3], {**PRODUCTS[3], "title": ["x"]}]),
         "products-test.jsonl", 4, "field 'title' must be a string, got list"),
    ],
)  # fmt: skip
def test_broken_input_names_file_and_line_and_writes_nothing(
    db: Database, data_dir: Path, tmp_path: Path, damage, file: str, line: int, message: str
) -> None:
    import_bundle(db, make_merit(tmp_path / "good"), "good", format="merit")
    before = table_counts(db)
    root = make_merit(tmp_path / "bad")
    damage(root)
    with pytest.raises(BundleError, match=message) as info:
        import_bundle(db, root, "bad", format="merit")
    assert (info.value.file, info.value.line) == (file, line)
    assert table_counts(db) == before
