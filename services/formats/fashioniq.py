"""FashionIQ: ``captions/cap.<category>.<split>.json`` + ``image_splits/split.<category>.<split>.json``.

Each captions file is a JSON array of ``{"target", "candidate", "captions": [2 strings]}``, where
``candidate`` is the REFERENCE image (the start kit opens it as the query image), not a gallery
candidate. A pair has no id: it gets ``<category>.<split>.<index>`` (0-based index in its file).
The two captions make the query text joined with " and " (as M-BEIR does); the raw captions stay
in ``extra``. The gallery is the union of the split files (lists of ASINs) of the categories read;
images are ``images/<asin>.jpg`` (``.png`` when only that exists). Test has no ``target``: the
ground truth is hidden, so a test import has no qrels.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from services.core.errors import BundleError
from services.formats.common import (
    ImageRefs,
    RecordFields,
    check_ident,
    dataset_root,
    first_file,
    iter_json_array,
    pick_split,
    read_json_list,
    relname,
    require_path,
    rest,
)
from services.formats.native import check_query_text
from services.formats.records import ItemRecord, ParsedBundle, QrelRecord, QueryRecord

log = logging.getLogger(__name__)

FORMAT = "fashioniq"
SPLITS = ("val", "test", "train")
DEFAULT_SPLIT = "val"
CATEGORIES = ("dress", "shirt", "toptee")
IMAGE_DIR = "images"
CAPTIONS_NAME = re.compile(r"^cap\.(?P<category>[A-Za-z0-9_-]+)\.(?P<split>[A-Za-z0-9_-]+)\.json$")
MAPPED = ("target", "candidate", "captions")


def read_fashioniq(
    path: Path,
    *,
    split: str | None = None,
    categories: tuple[str, ...] | None = None,
    allowed_roots: tuple[Path, ...] = (),
) -> ParsedBundle:
    """Parse FashionIQ captions of one split, all categories found (or those asked for).

    Args:
        path: the FashionIQ folder (``captions/`` and ``image_splits/``, or the files side by
            side), or one ``cap.<category>.<split>.json`` with its split file beside it or in
            ``../image_splits/``.
        split: ``val`` (the default for a folder: test ground truth is hidden), ``test`` or
            ``train``; a file is read as the split its name says.
        categories: only these categories (default: every ``cap.*.<split>.json`` present).
        allowed_roots: folders outside the dataset that image paths may point into.

    Raises:
        BundleError: a missing file, a malformed record, or a reference or target that is not
            in the gallery; the message names file and record.
    """
    path = require_path(path)
    if path.is_dir():
        split = pick_split(split, None, DEFAULT_SPLIT, SPLITS)
        root = path.resolve()
        found = {
            m["category"]: p
            for folder in (path, path / "captions")  # captions/ wins over loose files
            if folder.is_dir()
            for p in sorted(folder.glob(f"cap.*.{split}.json"))
            if (m := CAPTIONS_NAME.match(p.name)) and m["split"] == split
        }
        wanted = categories or tuple(sorted(found, key=_category_order))
        missing = [c for c in wanted if c not in found]
        if not wanted or missing:
            raise BundleError(
                f"no captions file cap.{(missing or ['<category>'])[0]}.{split}.json in {str(path)!r} "
                "or its captions/ folder"
            )
        files = [(c, found[c]) for c in wanted]
    else:
        match = CAPTIONS_NAME.match(path.name)
        if match is None:
            raise BundleError(
                f"{path.name!r} is not a FashionIQ captions file; give cap.<category>.<split>.json"
            )
        split = pick_split(split, match["split"], DEFAULT_SPLIT, SPLITS)
        if categories and match["category"] not in categories:
            raise BundleError(
                f"{path.name!r} is not one of the categories asked for ({', '.join(categories)})"
            )
        root = dataset_root(path, ("captions",))
        files = [(match["category"], path)]

    has_images = (root / IMAGE_DIR).is_dir()
    image_ref = ImageRefs(root, allowed_roots)
    items: dict[str, ItemRecord] = {}
    for category, captions in files:
        split_file = first_file(
            captions.parent,
            (
                f"split.{category}.{split}.json",
                f"image_splits/split.{category}.{split}.json",
                f"../image_splits/split.{category}.{split}.json",
            ),
        )
        if split_file is None:
            raise BundleError(
                f"no image_splits/split.{category}.{split}.json for {captions.name}; it lists the gallery"
            )
        split_name = relname(split_file, root)
        for n, asin in enumerate(read_json_list(split_file, split_name), start=1):
            asin = check_ident(asin, what=f"entry {n}", file=split_name)
            if asin in items:
                items[asin].attributes["categories"].append(category)
                continue
            image = f"{IMAGE_DIR}/{asin}.jpg"
            if has_images and not (root / image).is_file() and (root / IMAGE_DIR / f"{asin}.png").is_file():
                image = f"{IMAGE_DIR}/{asin}.png"
            items[asin] = ItemRecord(
                ext_id=asin,
                title="",
                text="",
                image=image_ref(image, file=split_name, line=None, field_name="asin"),
                category=category,
                attributes={"categories": [category]},
                file=split_name,
                line=None,
            )

    queries: list[QueryRecord] = []
    qrels: list[QrelRecord] = []
    for category, captions in files:
        cap_name = relname(captions, root)
        for record, line, obj in iter_json_array(captions, cap_name):
            f = RecordFields(obj, cap_name, line, record)
            qid = f"{category}.{split}.{record - 1}"
            reference = f.ident("candidate") or ""
            target = f.ident("target", required=False)
            raw = obj.get("captions")
            if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
                raise f.fail("field 'captions' must be a list of strings")
            text = check_query_text(f, " and ".join(c.strip() for c in raw if c.strip()))
            for role, asin in (("candidate (the reference image)", reference), ("target", target)):
                if asin is not None and asin not in items:
                    raise f.fail(f"{role} {asin!r} is not in the gallery (the split files of {split})")
            queries.append(
                QueryRecord(
                    ext_id=qid,
                    text=text,
                    ref_items=[reference],
                    category=category,
                    language="en",
                    extra={**rest(obj, MAPPED), "captions": raw, "split": split, "index": record - 1},
                    file=cap_name,
                    line=line,
                )
            )
            if target is not None:
                qrels.append(QrelRecord(qid, target, 1, cap_name, line))

    if queries and not qrels:
        log.warning(
            "FashionIQ %s has no ground truth (test targets are hidden): imported %d queries with no "
            "positives; annotators create them",
            split,
            len(queries),
        )
    return ParsedBundle(root, FORMAT, list(items.values()), queries, qrels, allow_missing_images=True)


def _category_order(category: str) -> tuple[int, str]:
    return (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES), category)
