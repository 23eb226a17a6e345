"""Embedding a dataset: item images, item texts and query texts, resumably.

Vectors go to the on-disk :class:`models.store.EmbeddingStore`, keyed by content: images by their
SHA-256 (deduplicated), texts by a hash of the text, so a rerun embeds only what is new. Images
are stored in chunks of :data:`EMBED_CHUNK`, so an interrupted run loses at most one chunk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from db.enums import Role
from db.session import Database
from models.store import EmbeddingStore, text_key
from services.core.auth import SYSTEM, Actor, allow
from services.core.config import load_settings
from services.core.errors import ValidationError
from services.core.media import MediaStore
from services.ranking.models import embedder_for, model_key_for, store_for
from services.ranking.pool import load_pool, load_queries, load_ref_images
from services.ranking.rankers import Progress
from services.ranking.ray_engine import RayOptions, check_ray, embed_with_ray

if TYPE_CHECKING:  # torch and open_clip load only when something needs embedding
    from models.embedder import ClipEmbedder

log = logging.getLogger(__name__)

EMBED_CHUNK = 2048  # images per stored shard: an interrupted run loses at most one chunk
LOCAL, RAY = "local", "ray"
ENGINES = (LOCAL, RAY)  # local: this process (DataLoader workers decode); ray: Ray Data
# Progress stage names of the text kinds.
_TEXT_STAGES = {"text": "embedding item texts", "query": "embedding queries"}


@dataclass(frozen=True)
class EmbedReport:
    model_key: str
    images_embedded: int
    images_stored_before: int
    texts_embedded: int
    queries_embedded: int
    failed: list[tuple[str, str]] = field(default_factory=list)  # (item ext id, reason)


@allow(Role.ADMIN)
def embed_dataset(
    db: Database,
    dataset: str,
    *,
    embedder: ClipEmbedder | None = None,
    data_dir: Path | None = None,
    progress: Progress | None = None,
    actor: Actor = SYSTEM,
    engine: str = LOCAL,
    ray: RayOptions | None = None,
) -> EmbedReport:
    """Embed every item image, item text and query text not stored yet (resumable).

    Unreadable images are reported by item id and skipped; the rest of the job goes on.
    ``engine`` ``ray`` runs the same work on Ray Data (:mod:`services.ranking.ray_engine`), on a
    local Ray or the cluster that ``ray`` names, into the same store.
    """
    if engine not in ENGINES:
        raise ValidationError(f"unknown embedding engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == RAY:
        check_ray()
    with db.read() as s:
        pool = load_pool(s, dataset)
        queries = load_queries(s, pool.dataset_id)
        ref_images = load_ref_images(s, pool.dataset_id)
    media = MediaStore(data_dir or load_settings().data_dir)
    # Images, deduplicated by content (key -> item ext id, file extension); stored in chunks so
    # an interrupted run resumes. Paths are made only for what is embedded.
    by_key: dict[str, tuple[str, str]] = {}
    for ext_id, key, ext in zip(pool.ext_ids, pool.image_keys, pool.image_ext, strict=True):
        if key is not None and key not in by_key:
            by_key[key] = (ext_id, ext or "jpg")
    for sha, ext in ref_images:
        by_key.setdefault(sha, (f"query-ref:{sha[:12]}", ext or "jpg"))
    item_texts = dict(zip(pool.text_keys, pool.texts, strict=True))
    query_texts = {text_key(t): t for t in queries.texts}

    # Ask the store what is missing before loading the model: a rerun with nothing new costs
    # neither torch's import nor the weights' load.
    if embedder is None:
        key = model_key_for(pool.settings)
        if key is not None:
            store = store_for(key, data_dir)
            if not _anything_missing(store, by_key, item_texts, query_texts):
                report = EmbedReport(key, 0, len(by_key), 0, 0)
                log.info("embedded %s: nothing new (%s)", dataset, report)
                return report
    embedder = embedder or embedder_for(pool.settings)
    store = store_for(embedder, data_dir)

    todo = store.missing("image", list(by_key))
    if engine == RAY:
        item_texts = dict(zip(pool.text_keys, pool.texts, strict=True))
        query_texts = {text_key(t): t for t in queries.texts}
        images = {key: media.original_path(key, by_key[key][1]) for key in todo}
        done = embed_with_ray(
            embedder, store, images, item_texts, query_texts, options=ray, progress=progress
        )
        failed_images = [(by_key[key][0], reason) for key, reason in done.failed]
        stored = done.stored
        return EmbedReport(
            embedder.model_key,
            stored.get("image", 0),
            len(by_key) - len(todo),
            stored.get("text", 0),
            stored.get("query", 0),
            failed_images,
        )
    failed: list[tuple[str, str]] = []
    embedded = 0
    for start in range(0, len(todo), EMBED_CHUNK):
        chunk = todo[start : start + EMBED_CHUNK]
        result = embedder.embed_image_files(
            [(key, media.original_path(key, by_key[key][1])) for key in chunk]
        )
        if result.ids:
            store.put("image", result.ids, result.vectors)
        failed.extend((by_key[key][0], reason) for key, reason in result.failed)
        embedded += len(result.ids)
        if progress is not None:
            progress("embedding images", min(start + EMBED_CHUNK, len(todo)), len(todo))

    texts_done = _embed_texts(store, embedder, "text", item_texts, progress)
    queries_done = _embed_texts(store, embedder, "query", query_texts, progress)
    report = EmbedReport(
        embedder.model_key, embedded, len(by_key) - len(todo), texts_done, queries_done, failed
    )
    log.info("embedded %s: %s", dataset, report)
    return report


def _anything_missing(
    store: EmbeddingStore, images: dict[str, object], texts: dict[str, str], queries: dict[str, str]
) -> bool:
    return bool(
        store.missing("image", list(images))
        or store.missing("text", list(texts))
        or store.missing("query", list(queries))
    )


def _embed_texts(
    store: EmbeddingStore, embedder: ClipEmbedder, kind: str, texts: dict[str, str], progress: Progress | None
) -> int:
    todo = store.missing(kind, list(texts))
    for start in range(0, len(todo), EMBED_CHUNK):
        chunk = todo[start : start + EMBED_CHUNK]
        store.put(kind, chunk, embedder.embed_texts([texts[k] for k in chunk]))
        if progress is not None:
            progress(_TEXT_STAGES[kind], min(start + EMBED_CHUNK, len(todo)), len(todo))
    return len(todo)
