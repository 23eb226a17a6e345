"""Reading bundles: the records every importer produces, and the native format's reader.

A format reader turns files into a :class:`ParsedBundle` (pure parsing, line-accurate errors);
``services.importer`` then checks references and images and writes it in one transaction. Each
benchmark format only needs a reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from services.core.errors import BundleError

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_ID_CHARS = 255
MAX_QUERY_CHARS = 5_000
MAX_TEXT_CHARS = 200_000
MAX_SHORT_CHARS = 128
QRELS_HEADER = ("query-id", "corpus-id", "score")
# Characters that render invisibly; they are kept (the text is the benchmark's) but a query
# made of nothing else is refused.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


@dataclass(frozen=True)
class ImageSource:
    """Where an image comes from, as written in the bundle.

    ``kind`` is ``file`` (``path`` is resolved inside the allowed roots), ``url`` (an http(s)
    reference kept as is) or ``missing`` (a benchmark format whose images are not shipped).
    """

    kind: str
    ref: str
    path: Path | None = None
    file: str = ""
    line: int | None = None


@dataclass
class ItemRecord:
    ext_id: str
    title: str
    text: str
    image: ImageSource | None
    category: str | None = None
    language: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    file: str = ""
    line: int | None = None


@dataclass
class QueryRecord:
    ext_id: str
    text: str
    ref_items: list[str] = field(default_factory=list)
    ref_images: list[ImageSource] = field(default_factory=list)
    category: str | None = None
    language: str | None = None
    source: str | None = None
    group: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    file: str = ""
    line: int | None = None


@dataclass
class QrelRecord:
    query_ext_id: str
    item_ext_id: str
    score: int
    file: str = ""
    line: int | None = None


@dataclass
class ParsedBundle:
    """Everything a format reader found, before references and images are checked."""

    root: Path
    format: str
    items: list[ItemRecord]
    queries: list[QueryRecord]
    qrels: list[QrelRecord]
    # Benchmark formats ship no images: a missing file is then a placeholder, not an error.
    allow_missing_images: bool = False


# --------------------------------------------------------------------------- low-level readers


def iter_lines(path: Path, relname: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, decoded line) for non-blank lines, with line-accurate errors."""
    if not path.is_file():
        raise BundleError(
            "file not found; a bundle needs items.jsonl, queries.jsonl and qrels.tsv", file=relname
        )
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise BundleError(
                    f"line is {len(raw):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit; split or shorten it",
                    file=relname,
                    line=number,
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise BundleError(
                    f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                    "save the file as UTF-8",
                    file=relname,
                    line=number,
                ) from e
            if number == 1:
                text = text.removeprefix("\ufeff")
            text = text.rstrip("\r\n")
            if text.strip():
                yield number, text


def iter_jsonl(path: Path, relname: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each JSON Lines record."""
    for number, text in iter_lines(path, relname):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            hint = " (the file looks truncated)" if "Unterminated" in e.msg or "Expecting" in e.msg else ""
            raise BundleError(
                f"invalid JSON: {e.msg} at column {e.colno}{hint}", file=relname, line=number
            ) from e
        if not isinstance(obj, dict):
            raise BundleError(f"expected a JSON object, got {type(obj).__name__}", file=relname, line=number)
        yield number, obj


def read_json(path: Path, relname: str) -> Any:
    """Read a whole JSON document (benchmark files that are one array or object)."""
    if not path.is_file():
        raise BundleError("file not found", file=relname)
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise BundleError(f"not valid UTF-8 at byte {e.start}; save the file as UTF-8", file=relname) from e
    except json.JSONDecodeError as e:
        raise BundleError(f"invalid JSON: {e.msg}", file=relname, line=e.lineno) from e


class Fields:
    """Typed access to one record's fields, raising errors that name the file, line and field."""

    def __init__(self, obj: dict[str, Any], file: str, line: int | None) -> None:
        self.obj, self.file, self.line = obj, file, line

    def fail(self, message: str) -> BundleError:
        return BundleError(message, file=self.file, line=self.line)

    def ident(self, key: str, *, required: bool = True) -> str | None:
        """An id: a non-empty string or an integer (benchmarks use both), returned as a string."""
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise self.fail(f"missing field {key!r}")
            return None
        value = self.obj[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(f"field {key!r} must be a string or an integer id, got {type(value).__name__}")
        value = str(value).strip()
        if not value:
            raise self.fail(f"field {key!r} is empty")
        if len(value) > MAX_ID_CHARS or any(c in value for c in "\t\n\r"):
            raise self.fail(
                f"field {key!r} must be at most {MAX_ID_CHARS} characters with no tabs or newlines"
            )
        return value

    def text(self, key: str, *, required: bool = True, max_chars: int = MAX_TEXT_CHARS) -> str | None:
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise self.fail(f"missing field {key!r}")
            return None
        value = self.obj[key]
        if not isinstance(value, str):
            raise self.fail(f"field {key!r} must be a string, got {type(value).__name__}")
        if len(value) > max_chars:
            raise self.fail(f"field {key!r} is {len(value):,} characters; the limit is {max_chars:,}")
        return value

    def short(self, key: str) -> str | None:
        value = self.text(key, required=False, max_chars=MAX_SHORT_CHARS)
        return value.strip() or None if value is not None else None

    def str_list(self, key: str) -> list[str]:
        if key not in self.obj or self.obj[key] is None:
            return []
        value = self.obj[key]
        if not isinstance(value, list) or not all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
        ):
            raise self.fail(f"field {key!r} must be a list of strings")
        return [str(v) for v in value]

    def mapping(self, key: str) -> dict[str, Any]:
        if key not in self.obj or self.obj[key] is None:
            return {}
        value = self.obj[key]
        if not isinstance(value, dict):
            raise self.fail(f"field {key!r} must be a JSON object, got {type(value).__name__}")
        return value


def check_query_text(fields: Fields, text: str) -> str:
    if not text.strip(ZERO_WIDTH + " \t\r\n"):
        raise fields.fail("query text is empty (or only invisible characters)")
    if len(text) > MAX_QUERY_CHARS:
        raise fields.fail(f"query text is {len(text):,} characters; the limit is {MAX_QUERY_CHARS:,}")
    return text


# --------------------------------------------------------------------------- image references


def _within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def resolve_image(
    ref: Any,
    *,
    root: Path,
    allowed_roots: tuple[Path, ...] = (),
    file: str,
    line: int | None,
    allow_url: bool = True,
    field_name: str = "image",
) -> ImageSource:
    """Turn an image reference into an :class:`ImageSource`, refusing anything unsafe.

    Relative paths must stay inside the bundle; absolute paths must lie inside the bundle or one
    of ``allowed_roots``; http(s) URLs are kept as references (never fetched).
    """
    if not isinstance(ref, str) or not ref.strip():
        raise BundleError(f"field {field_name!r} must be a non-empty path string", file=file, line=line)
    ref = ref.strip()
    scheme = urlparse(ref).scheme.lower()
    if scheme in ("http", "https"):
        if not allow_url:
            raise BundleError(
                f"field {field_name!r} is a URL ({ref[:80]}); give a path to an image file inside the bundle",
                file=file,
                line=line,
            )
        return ImageSource("url", ref, None, file, line)
    if len(scheme) > 1:  # file://, data:, ftp:, ... (one letter would be a Windows drive)
        raise BundleError(
            f"field {field_name!r} uses the {scheme}: scheme; give a path relative to the bundle",
            file=file,
            line=line,
        )
    root = root.resolve()
    given = Path(ref)
    path = (given if given.is_absolute() else root / given).resolve()
    if given.is_absolute():
        if not (_within(path, root) or any(_within(path, r) for r in allowed_roots)):
            raise BundleError(
                f"absolute image path {ref!r} is outside the bundle and outside the allowed roots; "
                "copy the image into the bundle or add its folder to QRELS_ALLOWED_ROOTS",
                file=file,
                line=line,
            )
    elif not _within(path, root):
        raise BundleError(
            f"image path {ref!r} escapes the bundle folder; image paths must stay inside the bundle",
            file=file,
            line=line,
        )
    return ImageSource("file", ref, path, file, line)


# --------------------------------------------------------------------------- the native format


def read_native_bundle(root: Path, *, allowed_roots: tuple[Path, ...] = ()) -> ParsedBundle:
    """Parse a native bundle: ``items.jsonl``, ``queries.jsonl``, ``qrels.tsv``, ``images/``."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"bundle folder {str(root)!r} does not exist or is not a folder")

    items: list[ItemRecord] = []
    for line, obj in iter_jsonl(root / "items.jsonl", "items.jsonl"):
        f = Fields(obj, "items.jsonl", line)
        image_ref = obj.get("image")
        if "image" not in obj:
            raise f.fail("missing field 'image'")
        items.append(
            ItemRecord(
                ext_id=f.ident("id") or "",
                title=f.text("title") or "",
                text=f.text("text") or "",
                image=resolve_image(
                    image_ref, root=root, allowed_roots=allowed_roots, file=f.file, line=line
                ),
                category=f.short("category"),
                language=f.short("language"),
                attributes=f.mapping("attributes"),
                file=f.file,
                line=line,
            )
        )

    queries: list[QueryRecord] = []
    for line, obj in iter_jsonl(root / "queries.jsonl", "queries.jsonl"):
        f = Fields(obj, "queries.jsonl", line)
        ref_images = [
            resolve_image(
                ref,
                root=root,
                allowed_roots=allowed_roots,
                file=f.file,
                line=line,
                allow_url=False,
                field_name="ref_images",
            )
            for ref in f.str_list("ref_images")
        ]
        queries.append(
            QueryRecord(
                ext_id=f.ident("id") or "",
                text=check_query_text(f, f.text("text") or ""),
                ref_items=f.str_list("ref_items"),
                ref_images=ref_images,
                category=f.short("category"),
                language=f.short("language"),
                source=f.short("source"),
                group=f.ident("group", required=False),
                file=f.file,
                line=line,
            )
        )

    return ParsedBundle(root, "native", items, queries, read_qrels_tsv(root / "qrels.tsv", "qrels.tsv"))


def read_qrels_tsv(path: Path, relname: str) -> list[QrelRecord]:
    """BEIR-style qrels: header ``query-id<TAB>corpus-id<TAB>score``, integer scores."""
    qrels: list[QrelRecord] = []
    header_seen = False
    for line, text in iter_lines(path, relname):
        cols = text.split("\t")
        if not header_seen:
            header_seen = True
            if tuple(c.strip() for c in cols) != QRELS_HEADER:
                raise BundleError(
                    "the first line must be the header 'query-id<TAB>corpus-id<TAB>score'",
                    file=relname,
                    line=line,
                )
            continue
        if len(cols) != 3:
            raise BundleError(
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}",
                file=relname,
                line=line,
            )
        qid, iid, score = (c.strip() for c in cols)
        if not qid or not iid:
            raise BundleError("query-id and corpus-id must not be empty", file=relname, line=line)
        try:
            value = int(score)
        except ValueError as e:
            raise BundleError(f"score {score!r} is not an integer", file=relname, line=line) from e
        qrels.append(QrelRecord(qid, iid, value, relname, line))
    if not header_seen:
        raise BundleError(
            "the file is empty; it needs the header 'query-id<TAB>corpus-id<TAB>score'", file=relname
        )
    return qrels
