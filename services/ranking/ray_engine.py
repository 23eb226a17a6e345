"""The ``ray`` embedding engine: what :func:`~services.ranking.embed.embed_dataset` does, on Ray Data.

The same work as the local engine (images not stored yet, item texts, queries) runs as a Ray Data
pipeline (:mod:`models.ray_embed`: decode in the read stage, one model per actor in the embed
stage). Results stream back to this process, which writes them into the same
:class:`~models.store.EmbeddingStore` in chunks of ``chunk`` vectors per kind, so ``rank`` reads
them unchanged and an interrupted run loses at most one chunk: a rerun embeds only what is missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.embedder import ClipEmbedder
from models.ray_embed import IMAGE, RAY_MISSING, Job, embed_on_ray, ray_available, ray_session
from models.store import EmbeddingStore
from services.core.errors import ValidationError
from services.ranking.rankers import Progress

log = logging.getLogger(__name__)

STAGE = "embedding on ray"


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray.

    Attributes:
        address: the cluster (``ray://head:10001``, ``head:6379``, ``auto``); ``None`` connects to
            ``RAY_ADDRESS`` when set, else starts a local Ray.
        batch_size: rows per model call on the actors (default 256 with GPUs, else 64).
        actors: model actors (default one per GPU of the cluster, else one).
        chunk: vectors per stored shard of a kind.
    """

    address: str | None = None
    batch_size: int | None = None
    actors: int | None = None
    chunk: int = 2048


@dataclass
class RayEmbedCounts:
    """What a Ray run stored: vectors per kind, and the images it could not read (key, reason)."""

    stored: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)


class _Writer:
    """Buffers finished vectors per kind and writes a store shard per ``chunk`` of them."""

    def __init__(self, store: EmbeddingStore, chunk: int) -> None:
        self.store, self.chunk = store, chunk
        self.keys: dict[str, list[str]] = {}
        self.rows: dict[str, list[np.ndarray]] = {}
        self.counts = RayEmbedCounts()

    def add(self, kind: str, key: str, vector: np.ndarray) -> None:
        self.keys.setdefault(kind, []).append(key)
        self.rows.setdefault(kind, []).append(vector)
        if len(self.keys[kind]) >= self.chunk:
            self.flush(kind)

    def flush(self, kind: str) -> None:
        keys = self.keys.pop(kind, [])
        if keys:
            self.store.put(kind, keys, np.stack(self.rows.pop(kind)))
            self.counts.stored[kind] = self.counts.stored.get(kind, 0) + len(keys)

    def flush_all(self) -> None:
        for kind in list(self.keys):
            self.flush(kind)


def check_ray() -> None:
    """Raise the install hint when Ray is missing.

    Raises:
        ValidationError: Ray (with Ray Data) cannot be imported here.
    """
    if not ray_available():
        raise ValidationError(RAY_MISSING)


def embed_with_ray(
    embedder: ClipEmbedder,
    store: EmbeddingStore,
    images: dict[str, Path],
    texts: dict[str, str],
    queries: dict[str, str],
    *,
    options: RayOptions | None = None,
    progress: Progress | None = None,
) -> RayEmbedCounts:
    """Embed on Ray what ``store`` lacks, writing it there as it arrives.

    Args:
        embedder: the loaded model (its weights go to the Ray actors).
        store: the embedding store of ``embedder``'s model.
        images: image key -> file, only the images still to embed.
        texts: item-text key -> text; stored ones are skipped.
        queries: query key -> text; stored ones are skipped.
        options: where and how to run (default :class:`RayOptions`: a local Ray).
        progress: called as ``progress("embedding on ray", done, total)``.

    Raises:
        ValidationError: Ray is not installed.
    """
    check_ray()
    options = options or RayOptions()
    jobs = [Job(IMAGE, key, str(path)) for key, path in images.items()]
    for kind, by_key in (("text", texts), ("query", queries)):
        jobs += [Job(kind, key, by_key[key]) for key in store.missing(kind, list(by_key))]
    writer = _Writer(store, options.chunk)
    if not jobs:
        return writer.counts
    done = 0
    with ray_session(options.address):
        try:
            for batch in embed_on_ray(embedder, jobs, batch_size=options.batch_size, actors=options.actors):
                rows = zip(batch.kinds, batch.keys, batch.vectors, batch.errors, strict=True)
                for kind, key, vector, error in rows:
                    if error:
                        writer.counts.failed.append((key, error))
                    else:
                        writer.add(kind, key, vector)
                done += len(batch.keys)
                if progress is not None:
                    progress(STAGE, done, len(jobs))
        finally:
            # Vectors that arrived are whole: keep them even when the run is interrupted.
            writer.flush_all()
    log.info("embedded on ray: %s, %d images failed", writer.counts.stored, len(writer.counts.failed))
    return writer.counts
