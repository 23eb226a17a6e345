"""Helpers shared by the benchmark readers: locating files, JSON arrays with record numbers, ids.

The benchmark readers (one module per format: beir, circo, cirr, fashioniq, mbeir, mcmr, merit)
each turn files into a :class:`~services.formats.records.ParsedBundle`. Each takes the benchmark's
folder (or, where the format is one file per split, a file) and ``allowed_roots``, plus a
``split`` (and format-specific) keyword with a sensible default. The formats and their pitfalls
are described in the project's formats notes; each module's docstring says how its fields map onto
items, queries and qrels. None of these benchmarks ships its images with the annotations, so every
reader allows missing images (placeholder cards). ``services.ingest.importer.READERS`` names them.

Benchmark files are either JSON Lines (errors name the line) or one pretty-printed or one-line
JSON array (errors name the record, 1-based, and the line it starts on).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from services.core.errors import BundleError
from services.formats.limits import MAX_ID_CHARS
from services.formats.native import Fields, resolve_image
from services.formats.records import ImageSource

_WHITESPACE = re.compile(r"[ \t\n\r]*")


class RecordFields(Fields):
    """:class:`Fields` for one record of a JSON array: errors say ``record N`` before the problem."""

    def __init__(self, obj: dict[str, Any], file: str, line: int | None, record: int) -> None:
        super().__init__(obj, file, line)
        self.record = record

    def fail(self, message: str) -> BundleError:
        return BundleError(f"record {self.record}: {message}", file=self.file, line=self.line)


def id_list(fields: Fields, key: str, *, required: bool = False) -> list[str]:
    """A list of ids (strings or integers, as benchmarks mix both), returned as strings.

    Duplicates are dropped, keeping the first occurrence, so a repeated positive is one qrel.
    """
    value = fields.obj.get(key)
    if value is None:
        if required:
            raise fields.fail(f"missing field {key!r}")
        return []
    if not isinstance(value, list):
        raise fields.fail(f"field {key!r} must be a list of ids, got {type(value).__name__}")
    out: list[str] = []
    for element in value:
        if isinstance(element, bool) or not isinstance(element, (str, int)):
            raise fields.fail(
                f"field {key!r} must hold string or integer ids, found {type(element).__name__}"
            )
        ident = str(element).strip()
        if not ident or len(ident) > MAX_ID_CHARS or any(c in ident for c in "\t\n\r"):
            raise fields.fail(
                f"field {key!r} holds an empty or malformed id {str(element)[:40]!r}; "
                f"ids are 1-{MAX_ID_CHARS} characters with no tabs or newlines"
            )
        out.append(ident)
    return unique(out)


def check_ident(value: Any, *, what: str, file: str, line: int | None = None) -> str:
    """An id taken from a JSON key or list (not a record field), with the same rules as ids."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BundleError(
            f"{what} must be a string or an integer id, got {type(value).__name__}", file=file, line=line
        )
    ident = str(value).strip()
    if not ident or len(ident) > MAX_ID_CHARS or any(c in ident for c in "\t\n\r"):
        raise BundleError(
            f"{what} {str(value)[:40]!r} is not a valid id: 1-{MAX_ID_CHARS} characters, no tabs or newlines",
            file=file,
            line=line,
        )
    return ident


def unique(values: Iterable[str]) -> list[str]:
    """The values in first-seen order, without repeats."""
    return list(dict.fromkeys(values))


def rest(obj: dict[str, Any], mapped: Iterable[str]) -> dict[str, Any]:
    """The record's fields that no column holds, kept so an exporter can write the record back."""
    skip = set(mapped)
    return {k: v for k, v in obj.items() if k not in skip}


def iter_json_array(path: Path, relname: str) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Yield (record number from 1, line the record starts on, object) for a JSON array of objects.

    The whole array is checked as it is read: a truncated file, a missing comma or anything after
    the closing bracket is an error naming the line.
    """
    text = read_text(path, relname)
    decoder = json.JSONDecoder()
    pos = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
    if pos >= len(text):
        raise BundleError("the file is empty; expected a JSON array of records", file=relname)
    if text[pos] != "[":
        raise BundleError(
            f"expected a JSON array of records ('['), found {text[pos]!r}",
            file=relname,
            line=text.count("\n", 0, pos) + 1,
        )
    line, counted = 1, 0
    pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", pos):
        _expect_end(text, pos + 1, relname)
        return
    record = 0
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        record += 1
        if pos >= len(text):
            raise BundleError(
                f"the file ends inside the array, before record {record} (the file looks truncated)",
                file=relname,
                line=line,
            )
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            hint = " (the file looks truncated)" if _at_end(e, text) else ""
            raise BundleError(
                f"record {record}: invalid JSON: {e.msg}{hint}", file=relname, line=e.lineno
            ) from e
        if not isinstance(value, dict):
            raise BundleError(
                f"record {record}: expected a JSON object, got {type(value).__name__}",
                file=relname,
                line=line,
            )
        yield record, line, value
        pos = _WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
        if pos >= len(text):
            raise BundleError(
                f"the file ends after record {record} without closing the array (the file looks truncated)",
                file=relname,
                line=text.count("\n") + 1,
            )
        if text[pos] == "]":
            _expect_end(text, pos + 1, relname)
            return
        if text[pos] != ",":
            raise BundleError(
                f"expected ',' or ']' after record {record}, found {text[pos]!r}",
                file=relname,
                line=text.count("\n", 0, pos) + 1,
            )
        pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]


def _expect_end(text: str, pos: int, relname: str) -> None:
    pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
    if pos < len(text):
        raise BundleError(
            "extra data after the closing ']' of the array", file=relname, line=text.count("\n", 0, pos) + 1
        )


def _at_end(e: json.JSONDecodeError, text: str) -> bool:
    # A string still open at the end of the file is reported where it starts.
    return e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string")


def read_text(path: Path, relname: str) -> str:
    """A whole UTF-8 file (a byte-order mark is dropped), with errors that say what to fix."""
    if not path.is_file():
        raise BundleError("file not found", file=relname)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise BundleError(
            f"not valid UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8", file=relname, line=line
        ) from e


def read_json_object(path: Path, relname: str) -> dict[str, Any]:
    """A JSON document that must be one object (e.g. CIRR's image split file)."""
    text = read_text(path, relname)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (the file looks truncated)" if _at_end(e, text) else ""
        raise BundleError(f"invalid JSON: {e.msg}{hint}", file=relname, line=e.lineno) from e
    if not isinstance(value, dict):
        raise BundleError(f"expected a JSON object, got {type(value).__name__}", file=relname)
    return value


def read_json_list(path: Path, relname: str) -> list[Any]:
    """A JSON document that must be one array (e.g. FashionIQ's split files: a list of ASINs)."""
    text = read_text(path, relname)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (the file looks truncated)" if _at_end(e, text) else ""
        raise BundleError(f"invalid JSON: {e.msg}{hint}", file=relname, line=e.lineno) from e
    if not isinstance(value, list):
        raise BundleError(f"expected a JSON array, got {type(value).__name__}", file=relname)
    return value


# --------------------------------------------------------------------------- locating files


def require_path(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{str(path)!r} does not exist; give the benchmark's folder or file")
    return path


def first_file(folder: Path, names: Iterable[str]) -> Path | None:
    """The first of ``names`` (relative paths) that is a file under ``folder``."""
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def dataset_root(file: Path, layout_dirs: Iterable[str]) -> Path:
    """The dataset folder a file belongs to: its folder, or above it while the folder is one of the
    benchmark's own layout folders (e.g. ``annotations/``, ``captions/``)."""
    folder = file.resolve().parent
    names = set(layout_dirs)
    while folder.name in names and folder.parent != folder:
        folder = folder.parent
    return folder


def relname(path: Path, root: Path) -> str:
    """How an error names a file: relative to the dataset folder when it lies inside it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def image_dir(root: Path, candidates: tuple[str, ...]) -> str:
    """The first candidate image folder that exists under ``root``, else the first (the documented
    layout): images are not shipped with annotation files, so the folder may well be absent."""
    for candidate in candidates:
        if (root / candidate).is_dir():
            return candidate
    return candidates[0]


class ImageRefs:
    """Resolves a reader's image references against one dataset folder, fast.

    Same rules and results as :func:`services.formats.native.resolve_image` (which it falls back to for
    anything unusual): each folder is resolved once and only the file name is checked on top, so a
    pool of 100k images costs 100k ``lstat`` calls rather than 100k full path resolutions.
    """

    def __init__(self, root: Path, allowed_roots: tuple[Path, ...] = (), *, allow_url: bool = False) -> None:
        self.root = root.resolve()
        self.allowed_roots = allowed_roots
        self.allow_url = allow_url
        self._folders: dict[str, Path | None] = {}

    def __call__(self, ref: Any, *, file: str, line: int | None, field_name: str) -> ImageSource:
        if isinstance(ref, str):
            ref = ref.strip()
            head, _, name = ref.rpartition("/")
            if name not in ("", ".", "..") and not ref.startswith("/") and ":" not in ref and "\\" not in ref:
                folder = self._folder(head)
                if folder is not None:
                    path = folder / name
                    if not path.is_symlink():
                        return ImageSource("file", ref, path, file, line)
        return resolve_image(
            ref,
            root=self.root,
            allowed_roots=self.allowed_roots,
            file=file,
            line=line,
            allow_url=self.allow_url,
            field_name=field_name,
        )

    def _folder(self, head: str) -> Path | None:
        if head not in self._folders:
            folder = (self.root / head).resolve()
            try:
                folder.relative_to(self.root)
            except ValueError:
                folder = None  # escapes: resolve_image gives the error
            self._folders[head] = folder
        return self._folders[head]


def pick_split(split: str | None, from_file: str | None, default: str, allowed: Iterable[str]) -> str:
    """The split to read: the file's own when a file was given, else ``split`` or the default."""
    allowed = tuple(allowed)
    if from_file is not None:
        if split is not None and split != from_file:
            raise BundleError(
                f"the file is the {from_file!r} split but split={split!r} was asked for; "
                "give the matching file or leave the split out"
            )
        return from_file
    chosen = split or default
    if chosen not in allowed:
        raise BundleError(f"unknown split {chosen!r}; choose one of {', '.join(allowed)}")
    return chosen
