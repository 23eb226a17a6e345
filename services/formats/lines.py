"""Reading text files line by line, with errors that name the file and line.

UTF-8 lines (a byte-order mark dropped, over-long lines refused), JSON Lines records, and
whitespace-separated fields with ``trec_eval``'s comment rule. The native bundle, the qrels reader
and the TREC run reader all read through here (a module of its own, so that the native reader can
use the qrels reader without the two importing each other).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.core.errors import BundleError
from services.formats.limits import MAX_LINE_BYTES


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


def iter_fields(path: Path, relname: str, *, indented_comments: bool) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, whitespace-separated fields), skipping ``#`` comment lines as ``trec_eval`` does.

    In qrels only a ``#`` in the first column starts a comment (``indented_comments`` false); in a
    run a comment may follow blanks.
    """
    if not path.is_file():
        raise BundleError("file not found", file=relname)
    for number, text in iter_lines(path, relname):
        if (text.lstrip() if indented_comments else text).startswith("#"):
            continue
        yield number, text.split()
