"""The pool search index of a dataset: built once per ranking version, on disk, memory-mapped.

An index is the pool's item ids, its unit-length CLIP image and text vectors (float16), its
BM25 index and each item's language (BM25 is standardised within a language when fused), written under ``<data dir>/search/<dataset id>-<digest>/`` where the digest is of
:func:`services.ranking.search_version.ranking_version` and the model's key. Every file is
memory-mapped when opened, so a 100,000-item index costs a few MB of private memory per process
and the pages are shared by every app process on the machine through the page cache.

Life cycle:

- :func:`build_search_index` writes it (temp folder + rename: two processes may race, one wins)
  and removes the dataset's older versions; the ranking job calls it at its end.
- :func:`ready_index` is what a search asks for: the kept index when its version is current,
  else one opened from disk, else None after starting a build in a background thread (the page
  shows "preparing search").
- The kept indexes are an LRU over datasets, ``QRELS_SEARCH_CACHE_DATASETS`` of them per process.

A re-rank, a re-import or a delete changes the version (or removes the dataset), so a stale
index is never served, whichever process did the change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from db.models import Dataset
from db.session import Database
from models.lexical import Bm25Index
from models.store import open_matrix
from services.core.auth import public
from services.core.config import load_settings
from services.core.errors import QrelsError, ValidationError
from services.core.lookups import dataset_or_404
from services.datasets.settings import DatasetSettings
from services.ranking.models import embedder_for, loaded_embedder, model_key_for, store_for
from services.ranking.pool import load_pool, rows_with_image
from services.ranking.search_version import ranking_version

if TYPE_CHECKING:
    from models.embedder import ClipEmbedder

log = logging.getLogger(__name__)

FOLDER = "search"  # under the data folder
_META = "meta.json"
LAYOUT = 2  # of the files in an index folder; part of its digest, so an older layout is rebuilt


@dataclass
class SearchIndex:
    """One dataset's pool, ready to search; the arrays are memory-mapped files."""

    dataset_id: int
    key: str  # the folder name: dataset id and digest of (ranking version, model key)
    model_key: str
    item_ids: np.ndarray  # int64, ascending (the pool's order)
    image_rows: np.ndarray  # int64 positions in item_ids that have an image vector, ascending
    image_matrix: np.ndarray | None  # float16 [len(image_rows), dim], unit rows
    text_matrix: np.ndarray  # float16 [len(item_ids), dim], unit rows
    bm25: Bm25Index
    language_groups: list[np.ndarray]  # positions of each item language's items (one group: [])
    embedder: ClipEmbedder | None = None  # set once loaded (free-text search needs it)

    def position(self, item_id: int) -> int | None:
        """Where ``item_id`` is in the pool, or None."""
        at = int(np.searchsorted(self.item_ids, item_id))
        return at if at < len(self.item_ids) and int(self.item_ids[at]) == item_id else None

    def image_row(self, position: int) -> int | None:
        """The row of the item at ``position`` in the image matrix, or None (no image vector)."""
        at = int(np.searchsorted(self.image_rows, position))
        return at if at < len(self.image_rows) and int(self.image_rows[at]) == position else None


@dataclass(frozen=True)
class _Target:
    """Which index a dataset needs now (read from the database)."""

    dataset_id: int
    settings: DatasetSettings
    model_key: str | None  # None: known only once the model is loaded
    root: Path  # <data dir>/search
    digest: str  # of the ranking version and the model key

    @property
    def key(self) -> str | None:
        return f"{self.dataset_id}-{self.digest}" if self.model_key else None

    @property
    def folder(self) -> Path | None:
        key = self.key
        return self.root / key if key else None


_kept: OrderedDict[tuple[str, int], SearchIndex] = OrderedDict()
_building: dict[tuple[str, int], threading.Thread] = {}
_failures: dict[tuple[str, int], str] = {}
_lock = threading.Lock()


def _target(db: Database, dataset: str, data_dir: Path | None, embedder: ClipEmbedder | None) -> _Target:
    """The index ``dataset`` needs now: one read of its ranking version, no model loaded."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        settings = DatasetSettings.from_stored(ds.settings)
        version = ranking_version(s, ds.id)
    known = embedder or loaded_embedder(settings)
    model_key = known.model_key if known is not None else model_key_for(settings)
    root = (data_dir or load_settings().data_dir) / FOLDER
    digest = hashlib.sha256(json.dumps([version, model_key, LAYOUT], default=str).encode()).hexdigest()[:16]
    return _Target(ds.id, settings, model_key, root, digest)


def _keep(url: str, index: SearchIndex) -> None:
    with _lock:
        _kept[(url, index.dataset_id)] = index
        _kept.move_to_end((url, index.dataset_id))
        while len(_kept) > max(1, load_settings().search_cache_datasets):
            _kept.popitem(last=False)


def kept_indexes() -> dict[tuple[str, int], str]:
    """(database URL, dataset id) -> index key of what this process keeps, least recently used first."""
    with _lock:
        return {slot: index.key for slot, index in _kept.items()}


def clear_search_cache() -> None:
    """Forget the indexes kept in memory (they are reopened from disk, or rebuilt, on demand)."""
    with _lock:
        _kept.clear()


def _open(folder: Path, dataset_id: int, embedder: ClipEmbedder | None) -> SearchIndex:
    meta = json.loads((folder / _META).read_text("utf-8"))
    item_ids = np.load(folder / "item_ids.npy")
    image_rows = np.load(folder / "image_rows.npy")
    return SearchIndex(
        dataset_id,
        folder.name,
        meta["model_key"],
        item_ids,
        image_rows,
        open_matrix(folder / "image.npy") if len(image_rows) else None,
        open_matrix(folder / "text.npy"),
        Bm25Index.load(folder / "bm25", [str(i) for i in item_ids.tolist()]),
        _groups(np.load(folder / "languages.npy")),
        embedder,
    )


def _groups(codes: np.ndarray) -> list[np.ndarray]:
    """Positions of each language's items, from the per-item language codes; none for one language."""
    values = np.unique(codes)
    return [np.flatnonzero(codes == v) for v in values] if len(values) > 1 else []


def _write(db: Database, dataset: str, folder: Path, model_key: str) -> None:
    """Write the index into ``folder`` (built in a temp folder, renamed at the end)."""
    with db.read() as s:
        pool = load_pool(s, dataset)
    store = store_for(model_key, folder.parent.parent)
    if store.missing("text", pool.text_keys):
        raise ValidationError(f"the pool of {dataset!r} is not embedded yet; an admin runs the ranking job")
    rows = rows_with_image(store, pool)
    temp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    temp.mkdir(parents=True)
    try:
        np.save(temp / "item_ids.npy", np.asarray(pool.item_ids, dtype=np.int64))
        np.save(temp / "image_rows.npy", np.asarray(rows, dtype=np.int64))
        languages = sorted({lang or "" for lang in pool.languages})
        code = {lang: n for n, lang in enumerate(languages)}
        np.save(
            temp / "languages.npy", np.asarray([code[lang or ""] for lang in pool.languages], dtype=np.int32)
        )
        store.write_matrix("text", pool.text_keys, temp / "text.npy")
        if rows:
            store.write_matrix("image", [pool.image_keys[n] for n in rows], temp / "image.npy")
        Bm25Index.build([str(i) for i in pool.item_ids], pool.texts).save(temp / "bm25")
        meta = {
            "model_key": model_key,
            "dataset": dataset,
            "items": len(pool.item_ids),
            "images": len(rows),
            "languages": languages,
        }
        (temp / _META).write_text(json.dumps(meta), "utf-8")
        try:
            temp.rename(folder)
        except OSError:
            if not (folder / _META).is_file():  # not another process's finished copy: a real error
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _prune(db: Database, root: Path, keep: str) -> None:
    """Remove the other versions of ``keep``'s dataset, and the indexes of deleted datasets."""
    with db.read() as s:
        alive = {str(i) for i in s.scalars(select(Dataset.id))}
    dataset_id = keep.split("-", 1)[0]
    for folder in root.iterdir():
        owner = folder.name.split("-", 1)[0]
        if folder.name.startswith(".") or folder.name == keep:
            continue
        if owner == dataset_id or owner not in alive:
            shutil.rmtree(folder, ignore_errors=True)  # open memory maps elsewhere stay valid


@public("builds a dataset's search index for callers that checked the role themselves")
def build_search_index(
    db: Database, dataset: str, *, data_dir: Path | None = None, embedder: ClipEmbedder | None = None
) -> SearchIndex:
    """Build (unless on disk already), open and keep the dataset's search index for its current
    ranking version. The ranking job calls it at its end, so no annotator waits for it.

    Raises:
        NotFoundError: no such dataset.
        ValidationError: the pool is not embedded yet.
        ModelUnavailable: the model's key is only known by loading it, and it does not load.
    """
    target = _target(db, dataset, data_dir, embedder)
    if target.model_key is None:  # random or hub weights: the key comes with the loaded model
        embedder = embedder_for(target.settings)
        target = _target(db, dataset, data_dir, embedder)
    assert target.folder is not None and target.key is not None
    if not (target.folder / _META).is_file():
        target.root.mkdir(parents=True, exist_ok=True)
        _write(db, dataset, target.folder, target.model_key)
        _prune(db, target.root, target.key)
    index = _open(target.folder, target.dataset_id, embedder or loaded_embedder(target.settings))
    _keep(db.url, index)
    log.info("search index of %s ready: %s", dataset, target.key)
    return index


@public("the search index for search_pool, which checks the role")
def ready_index(
    db: Database,
    dataset: str,
    *,
    data_dir: Path | None = None,
    embedder: ClipEmbedder | None = None,
    need_embedder: bool = True,
    wait: bool = False,
) -> SearchIndex | None:
    """The dataset's current search index, or None while it is being prepared in the background.

    Kept in memory when current; opened from disk (memory-mapped, milliseconds) when built
    already and, for free-text search (``need_embedder``), the model is loaded; otherwise a
    background thread builds it and loads the model, and None is returned at once. ``wait``
    builds it here instead.

    Raises:
        NotFoundError: no such dataset.
        ValidationError, ModelUnavailable: the last background preparation failed (said once;
            the next call tries again).
    """
    target = _target(db, dataset, data_dir, embedder)
    slot = (db.url, target.dataset_id)
    with _lock:
        kept = _kept.get(slot)
        if kept is not None and target.key is not None and kept.key == target.key:
            if embedder is not None:
                kept.embedder = embedder
            if kept.embedder is not None or not need_embedder:
                _kept.move_to_end(slot)
                return kept
    if wait:
        index = build_search_index(db, dataset, data_dir=data_dir, embedder=embedder)
        if need_embedder and index.embedder is None:
            index.embedder = embedder_for(target.settings)
        return index
    model = embedder or loaded_embedder(target.settings)
    if target.folder is not None and (target.folder / _META).is_file() and (model or not need_embedder):
        index = _open(target.folder, target.dataset_id, model)
        _keep(db.url, index)
        return index
    _prepare_in_background(db, dataset, data_dir, embedder, target, slot)
    return None


def _prepare_in_background(
    db: Database,
    dataset: str,
    data_dir: Path | None,
    embedder: ClipEmbedder | None,
    target: _Target,
    slot: tuple[str, int],
) -> None:
    with _lock:
        failure = _failures.pop(slot, None)
        if failure is not None:
            raise ValidationError(failure)
        running = _building.get(slot)
        if running is not None and running.is_alive():
            return

        def run() -> None:
            try:
                index = build_search_index(db, dataset, data_dir=data_dir, embedder=embedder)
                if index.embedder is None:
                    index.embedder = embedder_for(target.settings)
            except QrelsError as e:
                with _lock:
                    _failures[slot] = str(e)
            except Exception as e:  # recorded for the page, logged with its traceback for us
                log.exception("preparing the search index of %s failed", dataset)
                with _lock:
                    _failures[slot] = f"search could not be prepared ({type(e).__name__}: {e}); tell an admin"
            finally:
                with _lock:
                    if _building.get(slot) is threading.current_thread():
                        del _building[slot]

        thread = threading.Thread(target=run, name=f"search-index-{target.dataset_id}", daemon=True)
        _building[slot] = thread
        thread.start()
