"""BEIR: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` (``GenericDataLoader`` layout).

Corpus lines are ``{"_id", "title", "text"}`` (+ ``metadata``, and for image corpora an ``image``
path, the usual extension; BEIR itself ignores unknown fields). Queries are ``{"_id", "text"}``;
as in ``GenericDataLoader.load``, only the queries that the split's qrels name are kept (a
``queries.jsonl`` often holds every split's queries). Qrels are ``query-id<TAB>corpus-id<TAB>score``
under a header row, with integer (graded) scores; a score-0 row is a judged non-relevant document
and is kept as such.
"""

from __future__ import annotations

from pathlib import Path

from services.core.errors import BundleError
from services.formats.common import ImageRefs, pick_split, relname, require_path, rest
from services.formats.lines import iter_jsonl
from services.formats.native import Fields, check_query_text
from services.formats.qrels import read_qrels_tsv
from services.formats.records import ItemRecord, ParsedBundle, QueryRecord

FORMAT = "beir"
SPLITS = ("test", "dev", "train")
DEFAULT_SPLIT = "test"
ITEM_MAPPED = ("_id", "title", "text", "image")
QUERY_MAPPED = ("_id", "text")


def read_beir(path: Path, *, split: str | None = None, allowed_roots: tuple[Path, ...] = ()) -> ParsedBundle:
    """Parse a BEIR dataset folder.

    Args:
        path: the dataset folder, or one of its ``qrels/<split>.tsv`` files.
        split: ``test`` (the default), ``dev`` or ``train``; a qrels file is read as its name says.
        allowed_roots: folders outside the dataset that image paths may point into.

    Raises:
        BundleError: a missing file or a malformed line; the message names the file and line.
    """
    path = require_path(path)
    if path.is_dir():
        root = path.resolve()
        split = pick_split(split, None, DEFAULT_SPLIT, SPLITS)
    else:
        if path.suffix != ".tsv" or path.resolve().parent.name != "qrels":
            raise BundleError(
                f"{path.name!r} is not a BEIR qrels file; give the dataset folder or qrels/<split>.tsv"
            )
        root = path.resolve().parent.parent
        split = pick_split(split, path.stem, DEFAULT_SPLIT, SPLITS)
    qrels_file = root / "qrels" / f"{split}.tsv"
    for file in (root / "corpus.jsonl", root / "queries.jsonl", qrels_file):
        if not file.is_file():
            raise BundleError(
                f"no {relname(file, root)} in {str(root)!r}; a BEIR folder holds corpus.jsonl, queries.jsonl "
                "and qrels/<split>.tsv"
            )
    qrels = read_qrels_tsv(qrels_file, relname(qrels_file, root))
    judged = {r.query_ext_id for r in qrels}
    image_ref = ImageRefs(root, allowed_roots, allow_url=True)

    items: list[ItemRecord] = []
    for line, obj in iter_jsonl(root / "corpus.jsonl", "corpus.jsonl"):
        f = Fields(obj, "corpus.jsonl", line)
        image = obj.get("image")
        items.append(
            ItemRecord(
                ext_id=f.ident("_id") or "",
                title=f.text("title", required=False) or "",
                text=f.text("text", required=False) or "",
                image=image_ref(image, file=f.file, line=line, field_name="image") if image else None,
                attributes=rest(obj, ITEM_MAPPED),
                file=f.file,
                line=line,
            )
        )

    queries: list[QueryRecord] = []
    for line, obj in iter_jsonl(root / "queries.jsonl", "queries.jsonl"):
        f = Fields(obj, "queries.jsonl", line)
        qid = f.ident("_id") or ""
        if qid not in judged:
            continue
        queries.append(
            QueryRecord(
                ext_id=qid,
                text=check_query_text(f, f.text("text") or ""),
                extra={**rest(obj, QUERY_MAPPED), "split": split},
                file=f.file,
                line=line,
            )
        )
    return ParsedBundle(root, FORMAT, items, queries, qrels, allow_missing_images=True)
