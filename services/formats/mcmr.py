"""MCMR (CVPR 2026): ``query.jsonl`` + ``candidates.jsonl`` (the README spells it ``candidate.jsonl``).

Field names follow the evaluation scripts of EIT-NLP/MCMR (no real record was published beside
them): a query is text only (``query``, else ``text``), id ``qid`` (else ``id``), positives
``pos_ids`` (else ``positives``) compared as strings with ``candidate_id``. A candidate is an
Amazon-style product: ``candidate_id`` (else ``id``, ``asin``), ``title``, ``description`` and
``features`` (a list of strings or a string), ``images`` (a list of dicts, the first with ``url``,
``large`` or ``hi_res`` wins); its image is ``images/<basename of that URL>``. The domain is the
``candidate_id`` prefix (TOP, BOTTOM, SHO, Jewelry, Furniture): the item's category, and the
query's ``extra["domain"]`` from its positives.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from services.core.errors import BundleError
from services.formats.common import ImageRefs, id_list, relname, require_path, rest
from services.formats.lines import iter_jsonl
from services.formats.native import Fields, check_query_text
from services.formats.records import ImageSource, ItemRecord, ParsedBundle, QrelRecord, QueryRecord

FORMAT = "mcmr"
QUERY_FILE = "query.jsonl"
CANDIDATE_FILES = ("candidates.jsonl", "candidate.jsonl")
IMAGE_DIR = "images"
# Prefixes of candidate_id, in the case the MCMR scripts match them with startswith.
DOMAINS = ("TOP", "BOTTOM", "SHO", "Jewelry", "Furniture")
IMAGE_KEYS = ("url", "large", "hi_res")
IMAGE_FALLBACK_KEYS = ("image", "image_url", "img", "image_path", "imagePath", "imageName", "image_name")
ITEM_MAPPED = ("candidate_id", "title")
QUERY_MAPPED = ("qid", "id", "query", "text", "pos_ids", "positives")


def domain_of(candidate_id: str) -> str | None:
    """The MCMR domain encoded in a candidate id's prefix, or None."""
    return next((d for d in DOMAINS if candidate_id.startswith(d)), None)


def read_mcmr(path: Path, *, allowed_roots: tuple[Path, ...] = ()) -> ParsedBundle:
    """Parse an MCMR folder (``query.jsonl``, ``candidates.jsonl`` or ``candidate.jsonl``, ``images/``).

    Args:
        path: the folder, or its ``query.jsonl`` (the candidates file must be beside it).
        allowed_roots: folders outside the dataset that image paths may point into.

    Raises:
        BundleError: a missing file, both candidate spellings present, or a malformed record; the
            message names the file and line.
    """
    path = require_path(path)
    root = (path if path.is_dir() else path.parent).resolve()
    queries_file = path if path.is_file() else root / QUERY_FILE
    if not queries_file.is_file():
        raise BundleError(
            f"no {QUERY_FILE} in {str(root)!r}; an MCMR folder holds query.jsonl and candidates.jsonl"
        )
    present = [root / name for name in CANDIDATE_FILES if (root / name).is_file()]
    if not present:
        raise BundleError(
            f"no candidates.jsonl (or candidate.jsonl) beside {queries_file.name}; it is the candidate pool"
        )
    if len(present) > 1:
        raise BundleError(
            "both candidates.jsonl and candidate.jsonl are present; keep the one you mean to import "
            "(the MCMR scripts read candidates.jsonl)"
        )
    candidates_file = present[0]
    image_ref = ImageRefs(root, allowed_roots)

    items: list[ItemRecord] = []
    domains: dict[str, str | None] = {}
    cand_name = relname(candidates_file, root)
    for line, obj in iter_jsonl(candidates_file, cand_name):
        f = Fields(obj, cand_name, line)
        ext_id = _first_id(f, ("candidate_id", "id", "asin"))
        mapped = (*ITEM_MAPPED, *(() if "candidate_id" in obj else ("id", "asin")))
        parts = _text_parts(f, "description") + _text_parts(f, "features")
        domains[ext_id] = domain_of(ext_id)
        items.append(
            ItemRecord(
                ext_id=ext_id,
                title=f.text("title", required=False) or "",
                text="\n".join(parts),
                image=_image(f, image_ref),
                category=domains[ext_id],
                attributes=rest(obj, mapped),
                file=cand_name,
                line=line,
            )
        )

    queries: list[QueryRecord] = []
    qrels: list[QrelRecord] = []
    query_name = relname(queries_file, root)
    for line, obj in iter_jsonl(queries_file, query_name):
        f = Fields(obj, query_name, line)
        qid = _first_id(f, ("qid", "id"))
        if obj.get("query") in (None, "") and obj.get("text") in (None, ""):
            raise f.fail("missing field 'query' (or 'text'): the query's text")
        text = check_query_text(f, f.text("query" if obj.get("query") else "text") or "")
        positives = id_list(f, "pos_ids" if obj.get("pos_ids") else "positives")
        query_domains = sorted({d for p in positives if (d := domains.get(p) or domain_of(p))})
        queries.append(
            QueryRecord(
                ext_id=qid,
                text=text,
                category=query_domains[0] if len(query_domains) == 1 else None,
                extra={
                    **rest(obj, QUERY_MAPPED),
                    **(
                        {"domain": query_domains[0] if len(query_domains) == 1 else query_domains}
                        if query_domains
                        else {}
                    ),
                },
                file=query_name,
                line=line,
            )
        )
        qrels.extend(QrelRecord(qid, p, 1, query_name, line) for p in positives)
    return ParsedBundle(root, FORMAT, items, queries, qrels, allow_missing_images=True)


def _first_id(f: Fields, keys: tuple[str, ...]) -> str:
    """The first of ``keys`` that is set, like the scripts' ``obj.get(a) or obj.get(b)``."""
    for key in keys:
        if f.obj.get(key) not in (None, ""):
            return f.ident(key) or ""
    raise f.fail(f"missing field {keys[0]!r} (also looked for {', '.join(map(repr, keys[1:]))})")


def _text_parts(f: Fields, key: str) -> list[str]:
    value = f.obj.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    raise f.fail(f"field {key!r} must be a string or a list of strings, got {type(value).__name__}")


def _image(f: Fields, image_ref: ImageRefs) -> ImageSource | None:
    """``images/<basename>`` of the first image URL (or path), as the MCMR scripts resolve it."""
    url = _image_url(f)
    if url is None:
        return None
    name = (
        posixpath.basename(urlparse(url).path) if "://" in url else posixpath.basename(url.replace("\\", "/"))
    )
    if name in ("", ".", ".."):
        return None
    return image_ref(f"{IMAGE_DIR}/{name}", file=f.file, line=f.line, field_name="images")


def _image_url(f: Fields) -> str | None:
    images: Any = f.obj.get("images")
    if images is not None:
        if not isinstance(images, list):
            raise f.fail(
                f"field 'images' must be a list of objects with a 'url', got {type(images).__name__}"
            )
        for n, entry in enumerate(images, start=1):
            if not isinstance(entry, dict):
                raise f.fail(
                    f"field 'images': entry {n} must be an object with a 'url', got {type(entry).__name__}"
                )
            for key in IMAGE_KEYS:
                value = entry.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
    for key in IMAGE_FALLBACK_KEYS:
        value = f.obj.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
