"""Pool search for annotators: free text over the whole pool, or "more like this" from an item.

Free text goes through the CLIP image, CLIP text and BM25 rankers, fused as the candidate list is
(:data:`services.ranking.rankers.FUSION_WEIGHTS`); "more like this" is image → image, falling back
to the item's text when it has no image. The pool's normalised vectors and BM25 index are built
once per (database, dataset) and cached; the ranking job clears the cache
(:func:`clear_search_cache`) when it writes new runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from db.enums import Role
from db.session import Database
from models.embedder import ClipEmbedder
from models.fusion import fuse_runs
from models.lexical import Bm25Index
from models.search import topk
from services.core.auth import Actor, allow
from services.core.errors import NotFoundError, ValidationError
from services.ranking.models import embedder_for, store_for
from services.ranking.pool import load_pool, normalise, rows_with_image
from services.ranking.rankers import BM25, CLIP_IMAGE, CLIP_TEXT, FUSION_WEIGHTS


@dataclass(frozen=True)
class SearchHit:
    """One search result, best first; ``rankers``: each ranker's rank and score of the item."""

    item_id: int
    rankers: dict[str, Any]


@dataclass
class _SearchIndex:
    embedder: ClipEmbedder
    item_ids: list[int]
    image_rows: list[int]  # positions in item_ids that have an image vector
    image_matrix: np.ndarray | None
    text_matrix: np.ndarray
    bm25: Bm25Index


_search_cache: dict[tuple[str, str], _SearchIndex] = {}
_search_lock = threading.Lock()


def clear_search_cache() -> None:
    """Forget every cached search index (the pool's embeddings or runs changed)."""
    with _search_lock:
        _search_cache.clear()


def _search_index(
    db: Database, dataset: str, data_dir: Path | None, embedder: ClipEmbedder | None
) -> _SearchIndex:
    key = (db.url, dataset)
    with _search_lock:
        cached = _search_cache.get(key)
        if cached is not None:
            return cached
        with db.read() as s:
            pool = load_pool(s, dataset)
        embedder = embedder or embedder_for(pool.settings)
        store = store_for(embedder, data_dir)
        if store.missing("text", pool.text_keys):
            raise ValidationError(
                f"the pool of {dataset!r} is not embedded yet; an admin runs the ranking job"
            )
        rows = rows_with_image(store, pool)
        image_matrix = normalise(store.get("image", [pool.image_keys[n] for n in rows])) if rows else None
        index = _SearchIndex(
            embedder,
            pool.item_ids,
            rows,
            image_matrix,
            normalise(store.get("text", pool.text_keys)),
            Bm25Index.build([str(i) for i in pool.item_ids], pool.texts),
        )
        _search_cache[key] = index
        return index


@allow(Role.ANNOTATOR, Role.REVIEWER)
def search_pool(
    db: Database,
    dataset: str,
    *,
    actor: Actor,
    text: str | None = None,
    like_item: int | None = None,
    k: int = 20,
    data_dir: Path | None = None,
    embedder: ClipEmbedder | None = None,
) -> list[SearchHit]:
    """Search the whole pool: free text (the same three rankers, fused) or "more like this"
    from an item (image → image, falling back to its text when it has no image)."""
    if (text is None or not text.strip()) and like_item is None:
        raise ValidationError("type something to search for")
    index = _search_index(db, dataset, data_dir, embedder)
    depth = min(max(k * 3, 50), len(index.item_ids))
    runs: dict[str, dict[int, list[tuple[int, float]]]] = {}
    if like_item is not None:
        try:
            position = index.item_ids.index(like_item)
        except ValueError as e:
            raise NotFoundError(f"item {like_item} is not in dataset {dataset!r}") from e
        if index.image_matrix is not None and position in index.image_rows:
            vector = index.image_matrix[index.image_rows.index(position)][None, :]
            scores, idx = topk(vector, index.image_matrix, min(depth + 1, len(index.image_rows)))
            hits = [
                (index.item_ids[index.image_rows[j]], float(sc))
                for j, sc in zip(idx[0], scores[0], strict=True)
            ]
            runs[CLIP_IMAGE] = {0: hits}
        else:
            vector = index.text_matrix[position][None, :]
            scores, idx = topk(vector, index.text_matrix, depth + 1)
            runs[CLIP_TEXT] = {
                0: [(index.item_ids[j], float(sc)) for j, sc in zip(idx[0], scores[0], strict=True)]
            }
        for run in runs.values():
            run[0] = [(i, sc) for i, sc in run[0] if i != like_item]
    else:
        vector = normalise(index.embedder.embed_texts([text.strip()]))
        if index.image_matrix is not None:
            scores, idx = topk(vector, index.image_matrix, min(depth, len(index.image_rows)))
            runs[CLIP_IMAGE] = {
                0: [
                    (index.item_ids[index.image_rows[j]], float(sc))
                    for j, sc in zip(idx[0], scores[0], strict=True)
                ]
            }
        scores, idx = topk(vector, index.text_matrix, depth)
        runs[CLIP_TEXT] = {
            0: [(index.item_ids[j], float(sc)) for j, sc in zip(idx[0], scores[0], strict=True)]
        }
        hits, bm_scores = index.bm25.search([text.strip()], depth)
        runs[BM25] = {0: [(int(i), float(sc)) for i, sc in zip(hits[0], bm_scores[0], strict=True)]}
    fused = fuse_runs(runs, k=k, weights=FUSION_WEIGHTS).get(0, [])
    return [SearchHit(c.item_id, c.rankers) for c in fused]
