"""CIRCO (ICCV 2023): one JSON array per split, ``annotations/{val,test}.json``.

A query is a reference COCO image (``reference_img_id``, a pool item) plus ``relative_caption``;
``gt_img_ids`` are its positives (val only; test ground truth is hidden on the evaluation server,
so a test import has no qrels and annotators create the positives). The annotation files list no
gallery, so the pool is every image id the split mentions (references and ground truth), each
pointing at ``unlabeled2017/<12-digit id>.jpg`` (or ``COCO2017_unlabeled/unlabeled2017/`` as in
the CIRCO repository's layout).
"""

from __future__ import annotations

import logging
from pathlib import Path

from services.core.errors import BundleError
from services.formats.common import (
    ImageRefs,
    RecordFields,
    dataset_root,
    first_file,
    id_list,
    image_dir,
    iter_json_array,
    pick_split,
    relname,
    require_path,
    rest,
)
from services.formats.native import check_query_text
from services.formats.records import ItemRecord, ParsedBundle, QrelRecord, QueryRecord

log = logging.getLogger(__name__)

FORMAT = "circo"
SPLITS = ("val", "test")
DEFAULT_SPLIT = "val"
IMAGE_DIRS = ("unlabeled2017", "COCO2017_unlabeled/unlabeled2017")
MAPPED = ("id", "reference_img_id", "relative_caption", "gt_img_ids")


def read_circo(path: Path, *, split: str | None = None, allowed_roots: tuple[Path, ...] = ()) -> ParsedBundle:
    """Parse a CIRCO split.

    Args:
        path: the CIRCO folder (with ``annotations/<split>.json`` or ``<split>.json``) or one
            split file.
        split: ``val`` (the default for a folder: its ground truth is public) or ``test``; a
            file is read as the split its name says.
        allowed_roots: folders outside the dataset that image paths may point into.

    Raises:
        BundleError: a missing file or a malformed record; the message names file and record.
    """
    path = require_path(path)
    if path.is_dir():
        split = pick_split(split, None, DEFAULT_SPLIT, SPLITS)
        file = first_file(path, (f"annotations/{split}.json", f"{split}.json"))
        if file is None:
            others = [
                s for s in SPLITS if s != split and first_file(path, (f"annotations/{s}.json", f"{s}.json"))
            ]
            hint = (
                f"; found {others[0]}.json: give that file to import its split"
                + (
                    " (test ground truth is hidden: it imports with no positives)"
                    if others[0] == "test"
                    else ""
                )
                if others
                else ""
            )
            raise BundleError(f"no annotations/{split}.json or {split}.json in {str(path)!r}{hint}")
        root = path.resolve()
    else:
        file = path
        split = pick_split(split, path.stem if path.stem in SPLITS else None, DEFAULT_SPLIT, SPLITS)
        root = dataset_root(path, ("annotations",))
    name = relname(file, root)
    images = image_dir(root, IMAGE_DIRS)
    image_ref = ImageRefs(root, allowed_roots)

    items: dict[str, ItemRecord] = {}
    queries: list[QueryRecord] = []
    qrels: list[QrelRecord] = []
    first_record: dict[str, int] = {}

    def pool_item(image_id: str, f: RecordFields, field_name: str) -> None:
        if image_id in items:
            return
        if not image_id.isdigit():
            raise f.fail(f"field {field_name!r}: image id {image_id!r} is not a COCO image number")
        items[image_id] = ItemRecord(
            ext_id=image_id,
            title="",
            text="",
            image=image_ref(
                f"{images}/{int(image_id):012d}.jpg", file=f.file, line=f.line, field_name=field_name
            ),
            file=f.file,
            line=f.line,
        )

    for record, line, obj in iter_json_array(file, name):
        f = RecordFields(obj, name, line, record)
        qid = f.ident("id") or ""
        if qid in first_record:
            raise f.fail(f"duplicate query id {qid!r} (first in record {first_record[qid]})")
        first_record[qid] = record
        reference = f.ident("reference_img_id") or ""
        text = check_query_text(f, f.text("relative_caption") or "")
        gt = id_list(f, "gt_img_ids")
        target = f.ident("target_img_id", required=False)
        if not gt and target is not None:
            gt = [target]
        f.text("shared_concept", required=False)
        if "semantic_aspects" in obj and obj["semantic_aspects"] is not None:
            aspects = obj["semantic_aspects"]
            if not isinstance(aspects, list) or not all(isinstance(a, str) for a in aspects):
                raise f.fail("field 'semantic_aspects' must be a list of strings")
        pool_item(reference, f, "reference_img_id")
        for image_id in gt:
            pool_item(image_id, f, "gt_img_ids")
        queries.append(
            QueryRecord(
                ext_id=qid,
                text=text,
                ref_items=[reference],
                language="en",
                extra={**rest(obj, MAPPED), **({"target_img_id": target} if target else {}), "split": split},
                file=name,
                line=line,
            )
        )
        qrels.extend(QrelRecord(qid, image_id, 1, name, line) for image_id in gt)

    if queries and not qrels:
        log.warning(
            "%s has no ground truth (CIRCO %s labels are hidden on the evaluation server): "
            "imported %d queries with no positives; annotators create them",
            name,
            split,
            len(queries),
        )
    return ParsedBundle(root, FORMAT, list(items.values()), queries, qrels, allow_missing_images=True)
