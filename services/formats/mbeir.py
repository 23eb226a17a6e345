"""M-BEIR (UniIR; used by MM-Embed, LamRA, GME): a query JSONL and its candidate pool JSONL.

Layout of ``TIGER-Lab/M-BEIR``: ``query/<split>/mbeir_<dataset>_task<k>_<split>.jsonl`` and
``cand_pool/local/mbeir_<dataset>_task<k>_cand_pool.jsonl``; image paths (``img_path``,
``query_img_path``) are relative to the M-BEIR root. The pool (``did``, ``txt``, ``img_path``,
``modality``, ``src_content``) becomes the items; a query (``qid``, ``query_txt`` and/or
``query_img_path``) gets its image as a ``ref_images`` entry, and ``pos_cand_list`` (plain did
strings, not the ``{"did": ...}`` objects the dataset card shows) its positives. ``task_id``,
``query_modality``, ``query_src_content`` (a JSON *string*, kept verbatim) and ``neg_cand_list``
stay in ``extra``. The dataset is named from the id prefix (``"9:6"`` -> MSCOCO).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from services.core.errors import BundleError
from services.formats.common import ImageRefs, id_list, pick_split, relname, require_path, rest
from services.formats.lines import iter_jsonl
from services.formats.native import Fields, check_query_text
from services.formats.records import ImageSource, ItemRecord, ParsedBundle, QrelRecord, QueryRecord

FORMAT = "mbeir"
SPLITS = ("test", "val", "train", "union_train", "union_val")
DEFAULT_SPLIT = "test"
# UniIR src/data/preprocessing/utils.py DATASET_IDS, inverted.
DATASETS = {
    "0": "VisualNews",
    "1": "Fashion200K",
    "2": "WebQA",
    "3": "EDIS",
    "4": "NIGHTS",
    "5": "OVEN",
    "6": "INFOSEEK",
    "7": "FashionIQ",
    "8": "CIRR",
    "9": "MSCOCO",
}
QUERY_NAME = re.compile(r"^mbeir_(?P<stem>.+_task\d+)_(?P<split>[a-z_]+)\.jsonl$")
ITEM_MAPPED = ("did", "txt", "img_path")
QUERY_MAPPED = ("qid", "query_txt", "query_img_path", "pos_cand_list")


def read_mbeir(
    path: Path,
    *,
    split: str | None = None,
    dataset: str | None = None,
    cand_pool: Path | None = None,
    allowed_roots: tuple[Path, ...] = (),
) -> ParsedBundle:
    """Parse one M-BEIR query file and its candidate pool.

    Args:
        path: the M-BEIR root (``query/<split>/...``, ``cand_pool/local/...``) or a folder holding
            one query JSONL and one ``*cand_pool*.jsonl``, or a query JSONL file.
        split: ``test`` (the default) or another M-BEIR split; a file is read as its name says.
        dataset: which query file under the root, e.g. ``cirr_task7``, when there are several.
        cand_pool: the pool file, when it is not the local pool found from the query file's name.
        allowed_roots: folders outside the dataset that image paths may point into.

    Raises:
        BundleError: no (or no single) query or pool file, or a malformed record; the message
            names the file and line.
    """
    path = require_path(path)
    if path.is_dir():
        root = path.resolve()
        split = pick_split(split, None, DEFAULT_SPLIT, SPLITS)
        query_file = _query_file(root, split, dataset)
    else:
        match = QUERY_NAME.match(path.name)
        split = pick_split(split, match["split"] if match else None, DEFAULT_SPLIT, SPLITS)
        query_file = path.resolve()
        # query/<split>/x.jsonl lives two folders below the M-BEIR root.
        parent = query_file.parent
        root = parent.parent.parent if parent.parent.name == "query" else parent
    pool_file = require_path(cand_pool) if cand_pool is not None else _pool_file(root, query_file)
    image_ref = ImageRefs(root, allowed_roots)

    items: dict[str, ItemRecord] = {}
    pool_name = relname(pool_file, root)
    for line, obj in iter_jsonl(pool_file, pool_name):
        f = Fields(obj, pool_name, line)
        did = f.ident("did") or ""
        if did in items:
            raise f.fail(f"duplicate did {did!r} (first on line {items[did].line})")
        text = f.text("txt", required=False) or ""
        image = _image(f, "img_path", image_ref)
        if not text and image is None:
            raise f.fail("a candidate needs 'txt' or 'img_path'; both are empty")
        _optional_str(f, "src_content")
        items[did] = ItemRecord(
            ext_id=did,
            title="",
            text=text,
            image=image,
            category=_dataset(did),
            attributes=rest(obj, ITEM_MAPPED),
            file=pool_name,
            line=line,
        )

    queries: list[QueryRecord] = []
    qrels: list[QrelRecord] = []
    query_name = relname(query_file, root)
    for line, obj in iter_jsonl(query_file, query_name):
        f = Fields(obj, query_name, line)
        qid = f.ident("qid") or ""
        text = f.text("query_txt", required=False) or ""
        image = _image(f, "query_img_path", image_ref)
        if image is None:
            text = check_query_text(f, text)
        elif text.strip():
            check_query_text(f, text)
        _optional_str(f, "query_src_content")
        task = obj.get("task_id")
        if task is not None and (isinstance(task, bool) or not isinstance(task, int)):
            raise f.fail(f"field 'task_id' must be an integer, got {type(task).__name__}")
        positives = id_list(f, "pos_cand_list")
        negatives = id_list(f, "neg_cand_list")
        queries.append(
            QueryRecord(
                ext_id=qid,
                text=text,
                ref_images=[image] if image is not None else [],
                category=_dataset(qid),
                extra={**rest(obj, QUERY_MAPPED), "neg_cand_list": negatives, "split": split},
                file=query_name,
                line=line,
            )
        )
        qrels.extend(QrelRecord(qid, did, 1, query_name, line) for did in positives)
    return ParsedBundle(root, FORMAT, list(items.values()), queries, qrels, allow_missing_images=True)


def _query_file(root: Path, split: str, dataset: str | None) -> Path:
    pattern = f"mbeir_{dataset}_{split}.jsonl" if dataset else f"mbeir_*_{split}.jsonl"
    found = sorted((root / "query" / split).glob(pattern)) or sorted(root.glob(pattern))
    if not found:  # a loose file, e.g. a query file saved under another name
        found = sorted(p for p in root.glob("*.jsonl") if "cand_pool" not in p.name and "quer" in p.name)
        if dataset:
            found = [p for p in found if dataset in p.name]
    if len(found) == 1:
        return found[0]
    if not found:
        raise BundleError(
            f"no query file query/{split}/{pattern} (nor a single *query*.jsonl) in {str(root)!r}"
        )
    names = ", ".join(p.name for p in found[:8]) + (", ..." if len(found) > 8 else "")
    raise BundleError(
        f"{len(found)} query files in {str(root)!r} ({names}); pass dataset=, e.g. 'cirr_task7'"
    )


def _pool_file(root: Path, query_file: Path) -> Path:
    match = QUERY_NAME.match(query_file.name)
    if match is not None:
        local = root / "cand_pool" / "local" / f"mbeir_{match['stem']}_cand_pool.jsonl"
        if local.is_file():
            return local
    beside = sorted(query_file.parent.glob("*cand_pool*.jsonl"))
    if len(beside) == 1:
        return beside[0]
    expected = f"cand_pool/local/mbeir_{match['stem']}_cand_pool.jsonl" if match else "a *cand_pool*.jsonl"
    raise BundleError(f"no candidate pool for {query_file.name}: expected {expected} (or one beside it)")


def _image(f: Fields, key: str, image_ref: ImageRefs) -> ImageSource | None:
    value: Any = f.obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise f.fail(f"field {key!r} must be a path relative to the M-BEIR root, got {type(value).__name__}")
    return image_ref(value, file=f.file, line=f.line, field_name=key)


def _optional_str(f: Fields, key: str) -> None:
    value = f.obj.get(key)
    if value is not None and not isinstance(value, str):
        raise f.fail(f"field {key!r} must be a JSON-encoded string or null, got {type(value).__name__}")


def _dataset(ident: str) -> str | None:
    prefix, sep, _ = ident.partition(":")
    return DATASETS.get(prefix) if sep else None
