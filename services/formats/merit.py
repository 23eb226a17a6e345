"""MERIT (NeurIPS 2025): ``queries-<split>.json`` (JSON Lines despite the name) + products.

A query is interleaved text (``"query instruction"``, the key has a space) whose ``<Product i>``
tags stand for the i-th key of ``"query"`` (a dict ``{product id: {attribute: value}}``), so the
keys, in order, are the query's ``ref_items``. Positives are ``pos_candidate`` (ints);
``hard_negative`` (often near-positives, worth reviewing) stays in ``extra``. Queries carry no id:
the id is the 1-based line number, the "idx of the query" the MERIT README keys results by.

Products come from the HF dataset ``WeiChow/merit`` (``idx``, ``title``, ``class``, ``language``,
``country``, ``attribute``, ``image``), exported as JSON Lines; the pre-release records keyed by
``sku_id`` are read too. Ids are compared as strings (ints in queries, strings in products). The
image is the product's ``image`` path (or URL) when it is one, else ``images/<id>.jpg``. A query's category
and language are those of its first positive product.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from services.core.errors import BundleError
from services.formats.common import ImageRefs, check_ident, id_list, pick_split, relname, require_path, rest
from services.formats.lines import iter_jsonl
from services.formats.native import Fields, check_query_text
from services.formats.records import ImageSource, ItemRecord, ParsedBundle, QrelRecord, QueryRecord

FORMAT = "merit"
SPLITS = ("test", "train")
DEFAULT_SPLIT = "test"
IMAGE_DIR = "images"
TEXT_KEY = "query instruction"
QUERIES_NAME = re.compile(r"^queries-(?P<split>[A-Za-z0-9_]+)\.jsonl?$")
ITEM_MAPPED = ("idx", "sku_id", "title", "image", "class", "language", "spu_description")
QUERY_MAPPED = (TEXT_KEY, "pos_candidate", "hard_negative")


def read_merit(
    path: Path,
    *,
    split: str | None = None,
    products: Path | None = None,
    allowed_roots: tuple[Path, ...] = (),
) -> ParsedBundle:
    """Parse MERIT queries of one split and the products they draw on.

    Args:
        path: a folder with ``queries-<split>.json`` (or a single ``*quer*.json[l]``) and a
            products file (``products-<split>.jsonl``, ``products.jsonl`` or a single
            ``*product*.json[l]``), or the queries file itself.
        split: ``test`` (the default: its pool is all 51,177 test products) or ``train``; a
            ``queries-<split>.json`` file is read as its own split.
        products: the products file, when it is not found beside the queries.
        allowed_roots: folders outside the dataset that image paths may point into.

    Raises:
        BundleError: a missing file or a malformed record; the message names the file and line.
    """
    path = require_path(path)
    if path.is_dir():
        split = pick_split(split, None, DEFAULT_SPLIT, SPLITS)
        root = path.resolve()
        queries_file = _find(
            root, (f"queries-{split}.json", f"queries-{split}.jsonl"), "*quer*.json*", "queries"
        )
    else:
        match = QUERIES_NAME.match(path.name)
        split = pick_split(split, match["split"] if match else None, DEFAULT_SPLIT, SPLITS)
        root = path.resolve().parent
        queries_file = path
    if products is None:
        products = _find(
            root,
            (f"products-{split}.jsonl", f"products-{split}.json", "products.jsonl", "products.json"),
            "*product*.json*",
            "products",
        )
    products = require_path(products)
    image_ref = ImageRefs(root, allowed_roots, allow_url=True)

    items: dict[str, ItemRecord] = {}
    product_name = relname(products, root)
    for line, obj in iter_jsonl(products, product_name):
        f = Fields(obj, product_name, line)
        key = "idx" if obj.get("idx") is not None else "sku_id"
        if obj.get(key) is None:
            raise f.fail("missing field 'idx' (the product id; pre-release records use 'sku_id')")
        ext_id = f.ident(key) or ""
        if ext_id in items:
            raise f.fail(f"duplicate product id {ext_id!r} (first on line {items[ext_id].line})")
        items[ext_id] = ItemRecord(
            ext_id=ext_id,
            title=f.text("title", required=False) or "",
            text=f.text("spu_description", required=False) or "",
            image=_image(f, ext_id, image_ref),
            category=_label(f, "class"),
            language=f.short("language"),
            attributes=rest(obj, ITEM_MAPPED),
            file=product_name,
            line=line,
        )

    queries: list[QueryRecord] = []
    qrels: list[QrelRecord] = []
    query_name = relname(queries_file, root)
    for line, obj in iter_jsonl(queries_file, query_name):
        f = Fields(obj, query_name, line)
        qid = str(line)
        text = check_query_text(f, f.text(TEXT_KEY) or "")
        refs = _references(f)
        positives = id_list(f, "pos_candidate")
        first = items.get(positives[0]) if positives else None
        queries.append(
            QueryRecord(
                ext_id=qid,
                text=text,
                ref_items=refs,
                category=first.category if first else None,
                language=first.language if first else None,
                extra={
                    **rest(obj, QUERY_MAPPED),
                    "hard_negative": id_list(f, "hard_negative"),
                    "split": split,
                },
                file=query_name,
                line=line,
            )
        )
        qrels.extend(QrelRecord(qid, p, 1, query_name, line) for p in positives)
    return ParsedBundle(root, FORMAT, list(items.values()), queries, qrels, allow_missing_images=True)


def _find(root: Path, names: tuple[str, ...], pattern: str, what: str) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    matches = sorted(
        p for p in root.glob(pattern) if p.is_file() and (what == "products" or "product" not in p.name)
    )
    if len(matches) == 1:
        return matches[0]
    found = f" (found {', '.join(p.name for p in matches)})" if matches else ""
    raise BundleError(f"no single {what} file in {str(root)!r}: expected {names[0]}{found}")


def _references(f: Fields) -> list[str]:
    """The products the query's ``<Product i>`` tags refer to: the keys of ``query``, in order."""
    value: Any = f.obj.get("query")
    if value is None:
        return []
    if isinstance(value, dict):
        return [check_ident(k, what="a key of 'query'", file=f.file, line=f.line) for k in value]
    if isinstance(value, list):  # the released files may list ids instead (unconfirmed)
        return id_list(f, "query")
    raise f.fail(f"field 'query' must map product ids to attributes, got {type(value).__name__}")


def _label(f: Fields, key: str) -> str | None:
    value = f.obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f.short(key)


def _image(f: Fields, ext_id: str, image_ref: ImageRefs) -> ImageSource:
    value: Any = f.obj.get("image")
    if isinstance(value, dict):  # an HF image column exported as {"bytes", "path"}
        value = value.get("path")
    if not isinstance(value, str) or not value.strip():
        value = f"{IMAGE_DIR}/{ext_id}.jpg"
    return image_ref(value, file=f.file, line=f.line, field_name="image")
