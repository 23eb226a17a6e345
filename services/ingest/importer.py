"""Import a bundle into a dataset, atomically.

Order of work, so that a bad bundle writes nothing:

1. the format reader parses every file (line-accurate errors);
2. ids and references are checked (duplicates, qrels and ``ref_items`` pointing nowhere);
3. every image is read once and decoded once, in parallel (missing, unreadable, truncated,
   bombs), and staged with its thumbnail; once all passed they move into the content-addressed
   media store (an image stored already is not decoded again);
4. one database transaction replaces or creates the dataset and all its rows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from db.enums import ImageStatus, RevisionKind, Role
from db.models import Base, Dataset, Item, Qrel, Query, QueryRef, QueryRevision
from db.session import Database
from models.hashing import sha256_bytes
from services.core.auth import SYSTEM, Actor, allow
from services.core.config import load_settings
from services.core.errors import BundleError, DatasetExistsError, ValidationError
from services.core.lookups import dataset_or_404
from services.core.media import (
    MAX_IMAGE_BYTES,
    ImageInfo,
    ImageProblem,
    MediaStaging,
    MediaStore,
    describe_image,
    read_image,
)
from services.datasets.deletion import purge_as_job, tombstone
from services.datasets.settings import DatasetSettings, check_settings
from services.formats.beir import read_beir
from services.formats.circo import read_circo
from services.formats.cirr import read_cirr
from services.formats.fashioniq import read_fashioniq
from services.formats.mbeir import read_mbeir
from services.formats.mcmr import read_mcmr
from services.formats.merit import read_merit
from services.formats.native import SETTINGS_FILE, read_native_bundle
from services.formats.records import ImageSource, ParsedBundle

log = logging.getLogger(__name__)

BATCH = 5_000

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImportReport:
    dataset: str
    dataset_id: int
    format: str
    n_items: int
    n_queries: int
    n_qrels: int
    n_images: int
    n_missing_images: int
    n_remote_images: int
    warnings: list[str] = field(default_factory=list)


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 128 or any(c in name for c in "/\\\t\n"):
        raise ValidationError("a dataset name is 1-128 characters without slashes, tabs or newlines")
    return name


def check_references(bundle: ParsedBundle) -> None:
    """Duplicate ids, qrels and ``ref_items`` that point at nothing."""
    item_ids: dict[str, int] = {}
    for it in bundle.items:
        if it.ext_id in item_ids:
            raise BundleError(
                f"duplicate item id {it.ext_id!r} (first seen on line {item_ids[it.ext_id]})",
                file=it.file,
                line=it.line,
            )
        item_ids[it.ext_id] = it.line or 0
    if not bundle.items:
        raise BundleError("no items; the pool must hold at least one item", file="items.jsonl")
    query_ids: dict[str, int] = {}
    for q in bundle.queries:
        if q.ext_id in query_ids:
            raise BundleError(
                f"duplicate query id {q.ext_id!r} (first seen on line {query_ids[q.ext_id]})",
                file=q.file,
                line=q.line,
            )
        query_ids[q.ext_id] = q.line or 0
        for ref in q.ref_items:
            if ref not in item_ids:
                raise BundleError(f"ref_items names unknown item {ref!r}", file=q.file, line=q.line)
    seen: dict[tuple[str, str], int] = {}
    for r in bundle.qrels:
        if r.query_ext_id not in query_ids:
            raise BundleError(f"qrel for unknown query {r.query_ext_id!r}", file=r.file, line=r.line)
        if r.item_ext_id not in item_ids:
            raise BundleError(f"qrel for unknown item {r.item_ext_id!r}", file=r.file, line=r.line)
        key = (r.query_ext_id, r.item_ext_id)
        if key in seen:
            raise BundleError(
                f"duplicate qrel for query {key[0]!r} and item {key[1]!r} (first on line {seen[key]})",
                file=r.file,
                line=r.line,
            )
        seen[key] = r.line or 0


def image_workers() -> int:
    """Threads that read, decode and store images: Pillow, hashing and file I/O release the GIL."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def _ingest_image(
    staging: MediaStaging, src: ImageSource, allow_missing: bool
) -> tuple[ImageInfo | None, str | None]:
    """Check one image and store it with its thumbnail, reading and decoding the file once.

    Returns ``(info, None)``, ``(None, None)`` for a missing file that may be missing, or
    ``(None, problem)``.
    """
    path = src.path
    assert path is not None
    if not path.is_file():
        return None, None if allow_missing else f"image file {src.ref!r} not found in the bundle"
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, f"image {src.ref!r} cannot be read: {e.strerror or e}"
    sha = sha256_bytes(data)
    if staging.store.thumb_path(sha).exists() and len(data) <= MAX_IMAGE_BYTES:
        # Stored already (a re-import, a shared image): it was fully checked when it was stored.
        try:
            known = describe_image(data, sha256=sha)
            if staging.store.has(known):
                return known, None
        except ImageProblem:
            pass  # read_image says precisely what is wrong
    try:
        info, thumbnail = read_image(data, sha256=sha)
    except ImageProblem as e:
        return None, f"image {src.ref!r}: {e}"
    staging.put(data, info, thumbnail)
    return info, None


def _ingest_images(
    sources: list[ImageSource], allow_missing: bool, store: MediaStore, progress: Progress | None
) -> dict[Path, ImageInfo | None]:
    """Check every distinct local image and store it with its thumbnail, each read and decoded
    once, in parallel; raise on the first problem in file order, and then nothing is stored
    (new images are staged aside and moved into the store only once all passed)."""
    paths: list[ImageSource] = []
    seen: set[Path] = set()
    for src in sources:
        if src.kind == "file" and src.path not in seen:
            seen.add(src.path)  # type: ignore[arg-type]
            paths.append(src)

    results: dict[Path, ImageInfo | None] = {}
    staging = MediaStaging(store)
    pool = ThreadPoolExecutor(max_workers=image_workers())
    try:
        done = pool.map(lambda src: _ingest_image(staging, src, allow_missing), paths)
        for n, (src, (info, problem)) in enumerate(zip(paths, done, strict=True), start=1):
            if problem is not None:
                raise BundleError(problem, file=src.file, line=src.line)
            results[src.path] = info  # type: ignore[index]
            if progress is not None and (n % 1000 == 0 or n == len(paths)):
                progress("checking images and making thumbnails", n, len(paths))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # a bad image stops the rest at once
        staging.discard()
        raise
    pool.shutdown(wait=True)
    staging.commit()
    return results


def _image_columns(src: ImageSource | None, infos: dict[Path, ImageInfo | None]) -> dict:
    if src is None:
        return {
            "image_ref": None,
            "image_status": ImageStatus.MISSING,
            "image_sha256": None,
            "image_ext": None,
        }
    if src.kind == "url":
        return {
            "image_ref": src.ref,
            "image_status": ImageStatus.REMOTE,
            "image_sha256": None,
            "image_ext": None,
        }
    info = infos.get(src.path) if src.path is not None else None
    if info is None:
        return {
            "image_ref": src.ref,
            "image_status": ImageStatus.MISSING,
            "image_sha256": None,
            "image_ext": None,
        }
    return {
        "image_ref": src.ref,
        "image_status": ImageStatus.OK,
        "image_sha256": info.sha256,
        "image_ext": info.ext,
    }


@allow(Role.ADMIN)
def import_parsed(
    db: Database,
    bundle: ParsedBundle,
    name: str,
    *,
    replace: bool = False,
    is_demo: bool = False,
    actor: Actor = SYSTEM,
    data_dir: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Check and write a parsed bundle as dataset ``name`` (see the module doc for the order)."""
    name = _check_name(name)
    with db.read() as s:
        exists = s.scalar(select(Dataset.id).where(Dataset.name == name)) is not None
    if exists and not replace:
        raise DatasetExistsError(f"dataset {name!r} exists already; pass --replace to overwrite it")

    check_references(bundle)
    settings = _bundle_settings(bundle)
    sources = [it.image for it in bundle.items if it.image is not None]
    sources += [src for q in bundle.queries for src in q.ref_images]
    store = MediaStore(data_dir or load_settings().data_dir)
    infos = _ingest_images(sources, bundle.allow_missing_images, store, progress)

    n_missing = sum(
        1 for it in bundle.items if _image_columns(it.image, infos)["image_status"] == ImageStatus.MISSING
    )
    n_remote = sum(1 for it in bundle.items if it.image is not None and it.image.kind == "url")
    warnings = []
    if n_missing:
        warnings.append(f"{n_missing} item(s) have no image file; their cards show a placeholder")

    replaced = None
    with db.write() as s:
        if exists:  # the old dataset leaves with this transaction; its rows go in batches after it
            old = dataset_or_404(s, name, lock=True)
            tombstone(old)
            replaced = old.id
            s.flush()
        dataset = Dataset(
            name=name,
            source_format=bundle.format,
            source_path=str(bundle.root),
            settings=settings.as_stored(),
            is_demo=is_demo,
            created_by_id=actor.id,
        )
        s.add(dataset)
        s.flush()
        # Plain executemany inserts (no RETURNING, no ORM bookkeeping), then one query for the
        # ids: about a third faster at 100,000 items than an ORM insert returning ids.
        conn = s.connection()
        item_rows = (
            {
                "dataset_id": dataset.id,
                "ext_id": it.ext_id,
                "title": it.title,
                "text": it.text,
                "category": it.category,
                "language": it.language,
                "attributes": it.attributes,
                **_image_columns(it.image, infos),
                **_dimensions(it.image, infos),
            }
            for it in bundle.items
        )
        _insert_rows(conn, Item, item_rows, len(bundle.items), "writing items", progress)
        item_ids = dict(conn.execute(select(Item.ext_id, Item.id).where(Item.dataset_id == dataset.id)).all())

        query_rows = (
            {
                "dataset_id": dataset.id,
                "ext_id": q.ext_id,
                "text": q.text,
                "category": q.category,
                "language": q.language,
                "source": q.source,
                "group_key": q.group,
                "extra": q.extra,
                "position": n,
            }
            for n, q in enumerate(bundle.queries)
        )
        _insert_rows(conn, Query, query_rows, len(bundle.queries), "writing queries", progress)
        query_ids = dict(
            conn.execute(select(Query.ext_id, Query.id).where(Query.dataset_id == dataset.id)).all()
        )
        revisions = (
            {"query_id": query_ids[q.ext_id], "text": q.text, "kind": RevisionKind.ORIGINAL}
            for q in bundle.queries
        )
        _insert_rows(conn, QueryRevision, revisions)
        refs = []
        for q in bundle.queries:
            position = 0
            for ref in q.ref_items:
                refs.append({"query_id": query_ids[q.ext_id], "position": position, "item_id": item_ids[ref]})
                position += 1
            for src in q.ref_images:
                refs.append(
                    {"query_id": query_ids[q.ext_id], "position": position, **_image_columns(src, infos)}
                )
                position += 1
        _insert_rows(conn, QueryRef, refs)
        qrel_rows = (
            {"query_id": query_ids[r.query_ext_id], "item_id": item_ids[r.item_ext_id], "score": r.score}
            for r in bundle.qrels
        )
        _insert_rows(conn, Qrel, qrel_rows, len(bundle.qrels), "writing qrels", progress)
        dataset_id = dataset.id
    if replaced is not None:
        purge_as_job(db, replaced)

    report = ImportReport(
        dataset=name,
        dataset_id=dataset_id,
        format=bundle.format,
        n_items=len(bundle.items),
        n_queries=len(bundle.queries),
        n_qrels=len(bundle.qrels),
        n_images=sum(1 for i in infos.values() if i is not None),
        n_missing_images=n_missing,
        n_remote_images=n_remote,
        warnings=warnings,
    )
    log.info("imported %s: %s", name, report)
    return report


def _bundle_settings(bundle: ParsedBundle) -> DatasetSettings:
    """The defaults with the settings the bundle carries, each checked as ``datasets set`` would."""
    try:
        settings = DatasetSettings().changed(bundle.settings)
        check_settings(settings, bundle.settings)
    except ValidationError as e:
        raise BundleError(str(e), file=SETTINGS_FILE) from e
    return settings


def _insert_rows(
    conn: Connection,
    model: type[Base],
    rows: Iterable[dict[str, Any]],
    total: int = 0,
    stage: str = "",
    progress: Progress | None = None,
) -> None:
    """Insert ``rows`` into ``model``'s table, :data:`BATCH` at a time (executemany)."""
    statement = model.__table__.insert()
    done = 0
    rows = iter(rows)
    while batch := list(islice(rows, BATCH)):
        # executemany needs one set of columns per call: a query's references mix item and image rows.
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in batch:
            by_columns.setdefault(tuple(row), []).append(row)
        for group in by_columns.values():
            conn.execute(statement, group)
        done += len(batch)
        if progress is not None and stage:
            progress(stage, done, total)


def _dimensions(src: ImageSource | None, infos: dict[Path, ImageInfo | None]) -> dict:
    info = infos.get(src.path) if src is not None and src.path is not None else None
    return {"width": info.width if info else None, "height": info.height if info else None}


# Each reader takes the benchmark's folder (or, where the format is one file per split, a file)
# and ``allowed_roots``, plus a ``split`` (and format-specific) keyword with a sensible default.
READERS: dict[str, Callable[..., ParsedBundle]] = {
    "native": read_native_bundle,
    "mcmr": read_mcmr,
    "merit": read_merit,
    "circo": read_circo,
    "cirr": read_cirr,
    "fashioniq": read_fashioniq,
    "mbeir": read_mbeir,
    "beir": read_beir,
}


@allow(Role.ADMIN)
def import_bundle(
    db: Database,
    path: Path,
    name: str,
    *,
    format: str = "native",
    replace: bool = False,
    is_demo: bool = False,
    actor: Actor = SYSTEM,
    data_dir: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Read the bundle at ``path`` in ``format`` and import it as dataset ``name``.

    Raises:
        BundleError: the bundle is malformed; the message names the file, line and problem.
        DatasetExistsError: ``name`` exists and ``replace`` is false.
        PermissionDenied: ``actor`` is not an admin.
    """
    reader = READERS.get(format)
    if reader is None:
        raise ValidationError(f"unknown format {format!r}; choose one of {', '.join(sorted(READERS))}")
    bundle = reader(Path(path), allowed_roots=load_settings().allowed_roots)
    return import_parsed(
        db, bundle, name, replace=replace, is_demo=is_demo, actor=actor, data_dir=data_dir, progress=progress
    )
