"""The ``hybrid`` ranker: CLIP image and BM25 scores over the whole pool, standardised and summed.

Per query, every item gets z(CLIP image score) + z(BM25 score); BM25 is standardised within each
item language, since a query shares words with items in its own language only. An item that
satisfies conditions split between its image and its text, often outside both single-evidence
top-k lists, comes first.
"""

from __future__ import annotations

import numpy as np

from models.lexical import Bm25Index
from models.store import EmbeddingStore
from services.ranking.pool import Pool, QuerySet, normalise

HYBRID_CHUNK = 256  # queries per block of full-pool scores: bounds memory at 256 x pool size


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)


def _standardise_by_group(x: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Standardise each group of columns on its own. BM25 scores of items in different languages
    are not comparable (a query shares words with items in its own language only), so lexical
    evidence is standardised within each item language before it is added to the image score."""
    if len(groups) <= 1:
        return _standardise(x)
    out = np.empty_like(x)
    for columns in groups:
        out[:, columns] = _standardise(x[:, columns])
    return out


def hybrid_run(
    q_vec: np.ndarray,
    store: EmbeddingStore,
    pool: Pool,
    with_image: list[int],
    bm25: Bm25Index,
    queries: QuerySet,
    depth: int,
) -> dict[int, list[tuple[int, float]]]:
    """Per query, z(CLIP image score) + z(BM25 score) over every item; top ``depth``."""
    n_items = len(pool.item_ids)
    groups = [
        np.array([n for n, lang in enumerate(pool.languages) if lang == value])
        for value in set(pool.languages)
    ]
    image_matrix = (
        normalise(store.get("image", [pool.image_keys[n] for n in with_image])) if with_image else None
    )
    run: dict[int, list[tuple[int, float]]] = {}
    for start in range(0, len(queries.ids), HYBRID_CHUNK):
        stop = min(start + HYBRID_CHUNK, len(queries.ids))
        visual = np.zeros((stop - start, n_items), dtype=np.float32)
        if image_matrix is not None:
            sims = q_vec[start:stop] @ image_matrix.T
            visual[:] = sims.min(axis=1, keepdims=True)  # items without an image: the worst score
            visual[:, with_image] = sims
        lexical = np.stack([bm25.scores(queries.texts[n]) for n in range(start, stop)])
        fused = _standardise(visual) + _standardise_by_group(lexical, groups)
        top = np.argpartition(-fused, min(depth, n_items) - 1, axis=1)[:, :depth]
        for row, n in enumerate(range(start, stop)):
            order = top[row][np.lexsort((top[row], -fused[row, top[row]]))]
            run[queries.ids[n]] = [(pool.item_ids[j], float(fused[row, j])) for j in order]
    return run
