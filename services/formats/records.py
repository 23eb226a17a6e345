"""The records every format reader produces: items, queries, qrels, image references, the bundle.

A format reader turns files into a :class:`ParsedBundle` (pure parsing, line-accurate errors);
``services.ingest.importer`` then checks references and images and writes it in one transaction.
Each benchmark format only needs a reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    # The dataset's settings the bundle carries (native ``dataset.json``), checked at import.
    settings: dict[str, Any] = field(default_factory=dict)
