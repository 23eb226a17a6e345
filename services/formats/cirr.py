"""CIRR (ICCV 2021): ``captions/cap.rc2.<split>.json`` + ``image_splits/split.rc2.<split>.json``.

The split file maps every image name of the split to its path (``./dev/dev-244-0-img0.png``): it
is the gallery, so its keys are the pool. A query is ``reference`` (a pool item) + ``caption``;
positives are ``target_hard`` and every ``target_soft`` image graded 1.0. The other grades (0.5,
0.2, -1.0) are not positives; they stay, with the whole ``target_soft`` dict, ``target_hard`` and
``img_set``, in the query's ``extra`` for re-export. ``test1`` has no ground truth (evaluation
server): it imports with no qrels. Image paths are relative to the CIRR folder that holds the
``dev/``, ``train/``, ``test1/`` image folders.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from services.core.errors import BundleError
from services.formats.common import (
    ImageRefs,
    RecordFields,
    check_ident,
    first_file,
    iter_json_array,
    pick_split,
    read_json_object,
    relname,
    require_path,
    rest,
)
from services.formats.native import check_query_text
from services.formats.records import ItemRecord, ParsedBundle, QrelRecord, QueryRecord

log = logging.getLogger(__name__)

FORMAT = "cirr"
SPLITS = ("val", "test1", "train")
DEFAULT_SPLIT = "val"
CAPTIONS_NAME = re.compile(r"^cap\.rc2\.(?P<split>[A-Za-z0-9_-]+)\.json$")
MAPPED = ("pairid", "reference", "caption")


def _captions_in(folder: Path, split: str) -> Path | None:
    name = f"cap.rc2.{split}.json"
    return first_file(folder, (f"captions/{name}", name, f"cirr/captions/{name}"))


def _root_of(captions: Path) -> Path:
    """The CIRR folder of a captions file: the repository keeps annotations in
    ``cirr/captions/`` next to the image folders, so ``CIRR/cirr/captions/x.json`` -> ``CIRR``."""
    folder = captions.resolve().parent
    if folder.name == "captions":
        folder = folder.parent
        if folder.name == "cirr":
            folder = folder.parent
    return folder


def _split_file_for(captions: Path, split: str) -> Path | None:
    name = f"split.rc2.{split}.json"
    here = captions.parent
    return first_file(here, (name, f"image_splits/{name}", f"../image_splits/{name}"))


def read_cirr(path: Path, *, split: str | None = None, allowed_roots: tuple[Path, ...] = ()) -> ParsedBundle:
    """Parse a CIRR split.

    Args:
        path: the CIRR folder (``captions/`` and ``image_splits/``, or ``cirr/captions/``..., or
            the two files side by side), or a ``cap.rc2.<split>.json`` file with its split file
            beside it or in ``../image_splits/``.
        split: ``val`` (the default for a folder: ground truth is public), ``test1`` (``test`` is
            accepted for it) or ``train``; a file is read as the split its name says.
        allowed_roots: folders outside the dataset that image paths may point into.

    Raises:
        BundleError: a missing file, a malformed record, or a record naming an image that is not
            in the split file; the message names file and record.
    """
    path = require_path(path)
    if split == "test":
        split = "test1"
    if path.is_dir():
        split = pick_split(split, None, DEFAULT_SPLIT, SPLITS)
        captions = _captions_in(path, split)
        if captions is None:
            others = sorted({p.name for d in (path, path / "captions") for p in d.glob("cap.rc2.*.json")})
            hint = (
                f"found {', '.join(others)}: give that file to import its split "
                "(test1 ground truth is hidden: it imports with no positives)"
                if others
                else "give the CIRR folder or the captions file"
            )
            raise BundleError(
                f"no captions/cap.rc2.{split}.json (or cap.rc2.{split}.json) in {str(path)!r}; {hint}"
            )
        root = path.resolve()
    else:
        match = CAPTIONS_NAME.match(path.name)
        if match is None:
            raise BundleError(
                f"{path.name!r} is not a CIRR captions file; give cap.rc2.<split>.json "
                "(cap.ext.rc2.* are auxiliary captions, split.rc2.* the image lists)"
            )
        split = pick_split(split, match["split"], DEFAULT_SPLIT, SPLITS)
        captions = path
        root = _root_of(path)
    split_file = _split_file_for(captions, split)
    if split_file is None:
        raise BundleError(
            f"no split.rc2.{split}.json beside {captions.name} or in image_splits/; CIRR needs the "
            "image split file: it is the gallery and maps image names to paths"
        )
    cap_name, split_name = relname(captions, root), relname(split_file, root)

    image_ref = ImageRefs(root, allowed_roots)
    items: dict[str, ItemRecord] = {}
    for image_name, image_path in read_json_object(split_file, split_name).items():
        if not isinstance(image_path, str) or not image_path.strip():
            raise BundleError(
                f"image {image_name!r}: the value must be a relative image path string", file=split_name
            )
        image_name = check_ident(image_name, what="image name", file=split_name)
        items[image_name] = ItemRecord(
            ext_id=image_name,
            title="",
            text="",
            image=image_ref(image_path, file=split_name, line=None, field_name=image_name),
            file=split_name,
            line=None,
        )
    if not items:
        raise BundleError("the split file lists no images; the gallery would be empty", file=split_name)

    queries: list[QueryRecord] = []
    qrels: list[QrelRecord] = []
    first_record: dict[str, int] = {}
    for record, line, obj in iter_json_array(captions, cap_name):
        f = RecordFields(obj, cap_name, line, record)
        qid = f.ident("pairid") or ""
        if qid in first_record:
            raise f.fail(f"duplicate pairid {qid!r} (first in record {first_record[qid]})")
        first_record[qid] = record
        reference = f.ident("reference") or ""
        text = check_query_text(f, f.text("caption") or "")
        target_hard = f.ident("target_hard", required=False)
        soft = _target_soft(f)
        img_set = f.mapping("img_set")
        members = img_set.get("members", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise f.fail("field 'img_set.members' must be a list of image names")
        for role, name in (
            ("reference", reference),
            ("target_hard", target_hard),
            *(("target_soft", n) for n in soft),
        ):
            if name is not None and name not in items:
                raise f.fail(
                    f"{role} {name!r} is not an image of {split_name}; is it the split file of another split?"
                )
        positives = [n for n in (target_hard, *(n for n, g in soft.items() if g == 1.0)) if n is not None]
        queries.append(
            QueryRecord(
                ext_id=qid,
                text=text,
                ref_items=[reference],
                language="en",
                extra={**rest(obj, MAPPED), "split": split},
                file=cap_name,
                line=line,
            )
        )
        qrels.extend(QrelRecord(qid, n, 1, cap_name, line) for n in dict.fromkeys(positives))

    if queries and not qrels:
        log.warning(
            "%s has no ground truth (CIRR %s labels are hidden on the evaluation server): "
            "imported %d queries with no positives; annotators create them",
            cap_name,
            split,
            len(queries),
        )
    return ParsedBundle(root, FORMAT, list(items.values()), queries, qrels, allow_missing_images=True)


def _target_soft(f: RecordFields) -> dict[str, float]:
    soft: dict[str, Any] = f.mapping("target_soft")
    for name, grade in soft.items():
        if isinstance(grade, bool) or not isinstance(grade, (int, float)):
            raise f.fail(f"field 'target_soft': the grade of {name!r} must be a number, got {grade!r}")
    return {name: float(grade) for name, grade in soft.items()}
