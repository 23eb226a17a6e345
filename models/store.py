"""On-disk store of float16 embeddings, content-addressed, in append-only shards.

Layout under ``root``::

    <model_key>/<kind>/<shard>.npy     float16 [n, dim]
    <model_key>/<kind>/<shard>.keys    n lines, one key per row of the .npy

``kind`` is ``"image"`` (key: SHA-256 of the image file's bytes), ``"text"`` (key:
:func:`item_text_key` of an item's title and text) or ``"query"`` (key: :func:`text_key` of the
query text). Keys are content hashes, so an edited item gets a new key and stale vectors are
never served.

Each shard is written as temp file + rename, the ``.npy`` first and the ``.keys`` last: a shard
exists only once its keys file does. A run that dies mid-write leaves at most a temp file or an
orphan ``.npy``, both ignored (and removed by :meth:`EmbeddingStore.compact`), so a rerun asks
:meth:`EmbeddingStore.missing` and embeds only what is not stored yet.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["KINDS", "EmbeddingStore", "item_text_key", "open_matrix", "text_key"]

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("image", "text", "query")
_KEYS_SUFFIX = ".keys"
_TEMP_PREFIX = ".tmp-"


def text_key(text: str) -> str:
    """SHA-256 hex digest of ``text`` (UTF-8): the key of a query."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_text_key(title: str, text: str) -> str:
    """Key of an item's text side: SHA-256 of its title and text joined by a newline."""
    return text_key(f"{title}\n{text}")


@dataclass
class _Shard:
    path: Path  # the .npy
    keys: list[str]
    vectors: np.ndarray | None = None  # memory-mapped on first use

    def rows(self) -> np.ndarray:
        if self.vectors is None:
            self.vectors = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return self.vectors


class EmbeddingStore:
    """float16 vectors of one model, by kind and key.

    Args:
        root: the embeddings folder (the app passes ``QRELS_DATA_DIR/embeddings``).
        model_key: :attr:`models.embedder.ClipEmbedder.model_key`; vectors of different models
            live in different folders.
    """

    def __init__(self, root: Path, model_key: str) -> None:
        if not model_key or "/" in model_key or "\\" in model_key or model_key.startswith("."):
            raise ValueError(
                f"model_key {model_key!r} is not a plain folder name; use ClipEmbedder.model_key"
            )
        self.folder = Path(root) / model_key
        self._shards: dict[str, list[_Shard]] = {}
        self._index: dict[str, dict[str, tuple[int, int]]] = {}
        self._dim: dict[str, int] = {}

    # ---------------------------------------------------------------------------------- reading

    def _kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown embedding kind {kind!r}; use one of {', '.join(KINDS)}")
        return self.folder / kind

    def _load(self, kind: str) -> dict[str, tuple[int, int]]:
        """Read (once) the keys of every committed shard of ``kind``."""
        if kind in self._index:
            return self._index[kind]
        folder = self._kind_dir(kind)
        shards: list[_Shard] = []
        index: dict[str, tuple[int, int]] = {}
        if folder.is_dir():
            for keys_path in sorted(folder.glob(f"*{_KEYS_SUFFIX}")):
                if keys_path.name.startswith(_TEMP_PREFIX):
                    continue
                npy = keys_path.with_suffix(".npy")
                if not npy.is_file():
                    logger.warning("embedding shard %s has no vectors file; ignored", keys_path)
                    continue
                self._add_shard(kind, shards, index, npy, keys_path.read_text("utf-8").splitlines())
        self._shards[kind] = shards
        self._index[kind] = index
        return index

    def _add_shard(
        self,
        kind: str,
        shards: list[_Shard],
        index: dict[str, tuple[int, int]],
        npy: Path,
        keys: list[str],
    ) -> None:
        shard = _Shard(npy, keys)
        rows = shard.rows()
        if rows.ndim != 2 or rows.shape[0] != len(keys):
            logger.warning("embedding shard %s: %d keys for shape %s; ignored", npy, len(keys), rows.shape)
            return
        dim = self._dim.setdefault(kind, int(rows.shape[1]))
        if rows.shape[1] != dim:
            logger.warning("embedding shard %s has dim %d, not %d; ignored", npy, rows.shape[1], dim)
            return
        number = len(shards)
        shards.append(shard)
        for row, key in enumerate(keys):
            index.setdefault(key, (number, row))

    def count(self, kind: str) -> int:
        """How many vectors of ``kind`` are stored."""
        return len(self._load(kind))

    def dim(self, kind: str) -> int | None:
        """The vectors' dimension, or ``None`` while nothing of ``kind`` is stored."""
        self._load(kind)
        return self._dim.get(kind)

    def keys(self, kind: str) -> list[str]:
        """Every stored key of ``kind``, in storage order."""
        return list(self._load(kind))

    def missing(self, kind: str, keys: Iterable[str]) -> list[str]:
        """The keys (in input order, without repeats) that have no stored vector yet."""
        index = self._load(kind)
        seen: set[str] = set()
        out: list[str] = []
        for key in keys:
            if key not in index and key not in seen:
                seen.add(key)
                out.append(key)
        return out

    def get(self, kind: str, keys: Sequence[str]) -> np.ndarray:
        """Return the vectors of ``keys``, float16 ``[len(keys), dim]``, row ``i`` for ``keys[i]``.

        Raises:
            KeyError: a key has no stored vector (the message names it).
        """
        index = self._load(kind)
        dim = self._dim.get(kind)
        if not keys:
            return np.empty((0, dim or 0), dtype=np.float16)
        locations = np.empty((len(keys), 2), dtype=np.int64)
        for i, key in enumerate(keys):
            try:
                locations[i] = index[key]
            except KeyError:
                raise KeyError(
                    f"no {kind} embedding for key {key!r} in {self.folder}; embed it first "
                    f"({len(keys)} keys asked for)"
                ) from None
        out = np.empty((len(keys), dim or 0), dtype=np.float16)
        shards = self._shards[kind]
        for number in np.unique(locations[:, 0]):
            positions = np.flatnonzero(locations[:, 0] == number)
            out[positions] = shards[number].rows()[locations[positions, 1]]
        return out

    def write_matrix(self, kind: str, keys: Sequence[str], path: Path, *, chunk: int = 16_384) -> None:
        """Write the vectors of ``keys`` as one float16 ``.npy`` file, rows scaled to unit length,
        row ``i`` for ``keys[i]``, for :func:`open_matrix` to memory-map.

        Written ``chunk`` rows at a time into a memory-mapped file (temp file + rename), so a
        pool of millions never sits in memory twice.

        Raises:
            KeyError: a key has no stored vector.
        """
        self._load(kind)
        dim = self._dim.get(kind) or 0
        path = Path(path)
        temp = path.with_name(f"{_TEMP_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}")
        try:
            out = np.lib.format.open_memmap(temp, mode="w+", dtype=np.float16, shape=(len(keys), dim))
            for start in range(0, len(keys), chunk):
                rows = self.get(kind, keys[start : start + chunk]).astype(np.float32)
                rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
                out[start : start + len(rows)] = rows
            out.flush()
            del out
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)

    # ---------------------------------------------------------------------------------- writing

    def put(self, kind: str, keys: Sequence[str], vectors: np.ndarray) -> int:
        """Store vectors under keys as one new shard; keys stored already are skipped.

        Args:
            kind: ``"image"``, ``"text"`` or ``"query"``.
            keys: one key per row; no newlines.
            vectors: ``[len(keys), dim]``; stored as float16.

        Returns:
            How many vectors were written.

        Raises:
            ValueError: shapes disagree, a key is empty or has a newline, or ``dim`` differs from
                what is stored.
        """
        index = self._load(kind)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(
                f"{len(keys)} keys need vectors of shape [{len(keys)}, dim], got {vectors.shape}"
            )
        stored_dim = self._dim.get(kind)
        if stored_dim is not None and vectors.shape[1] != stored_dim:
            raise ValueError(
                f"{kind} vectors have dim {vectors.shape[1]}, but {self.folder / kind} holds dim {stored_dim}; "
                "a different model needs its own model_key"
            )
        rows: list[int] = []
        new_keys: list[str] = []
        seen: set[str] = set()
        for row, key in enumerate(keys):
            if not key or "\n" in key or "\r" in key:
                raise ValueError(f"embedding key {key!r} is empty or has a line break; use a hex digest")
            if key in index or key in seen:
                continue
            seen.add(key)
            rows.append(row)
            new_keys.append(key)
        if not new_keys:
            return 0
        data = np.ascontiguousarray(vectors[rows], dtype=np.float16)
        folder = self._kind_dir(kind)
        folder.mkdir(parents=True, exist_ok=True)
        npy, keys_path = self._write_shard(folder, new_keys, data)
        self._add_shard(kind, self._shards[kind], index, npy, new_keys)
        logger.debug("stored %d %s vectors in %s", len(new_keys), kind, keys_path)
        return len(new_keys)

    def _write_shard(self, folder: Path, keys: list[str], data: np.ndarray) -> tuple[Path, Path]:
        # Names sort by creation (count of shards so far), with a random part so two writers
        # never pick the same name.
        stem = f"{len(list(folder.glob('*' + _KEYS_SUFFIX))):06d}-{uuid.uuid4().hex[:12]}"
        npy = folder / f"{stem}.npy"
        keys_path = folder / f"{stem}{_KEYS_SUFFIX}"
        _atomic_write(npy, lambda fh: np.save(fh, data, allow_pickle=False))
        _atomic_write(keys_path, lambda fh: fh.write(("\n".join(keys) + "\n").encode("utf-8")))
        return npy, keys_path

    def compact(self, kind: str) -> None:
        """Merge every shard of ``kind`` into one and remove leftovers of interrupted writes."""
        index = self._load(kind)
        folder = self._kind_dir(kind)
        if not folder.is_dir():
            return
        old = [p for p in folder.iterdir() if p.is_file()]
        if len(self._shards[kind]) > 1:
            keys = list(index)
            data = self.get(kind, keys)
            self._shards[kind] = []  # drop the memory maps before their files go
            npy, _ = self._write_shard(folder, keys, data)
            keep = {npy, npy.with_suffix(_KEYS_SUFFIX)}
        else:
            keep = {
                p for shard in self._shards[kind] for p in (shard.path, shard.path.with_suffix(_KEYS_SUFFIX))
            }
            self._shards[kind] = []
        # Keys files first: once a shard's keys are gone it no longer counts, whatever else stays.
        for path in sorted(old, key=lambda p: p.suffix != _KEYS_SUFFIX):
            if path not in keep:
                path.unlink(missing_ok=True)
        self._index.pop(kind, None)
        self._shards.pop(kind, None)
        self._dim.pop(kind, None)
        logger.info("compacted %s embeddings in %s: %d vectors", kind, folder, self.count(kind))


def open_matrix(path: Path) -> np.ndarray:
    """A matrix :meth:`EmbeddingStore.write_matrix` wrote, memory-mapped read-only: the pages are
    read from disk as they are used and shared by every process that maps the file."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temp file in the same folder, fsync it, then rename."""
    temp = path.with_name(f"{_TEMP_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        with temp.open("wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
