"""The ``hybrid`` ranker: each ranker's score over the whole pool, standardised and summed.

Per query, every item gets z(CLIP image score) + z(CLIP text score) + z(BM25 score), each
standardised over the pool (BM25 within each item language, since a query shares words with items
in its own language only) and weighted by :data:`services.ranking.rankers.EVIDENCE_WEIGHTS`. Each
piece of evidence is what one ranker is good at: the image shows colour, pattern and type; the
item's text, read by the CLIP text tower, carries material, brand, size and type in either
language; BM25 matches the query's exact words. An item that satisfies conditions split between
its image and its text, often outside every single-evidence top-k list, comes first. Pool search
(:mod:`services.ranking.search`) ranks free text the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from models.lexical import Bm25Index
from models.store import EmbeddingStore
from services.ranking.pool import Pool, QuerySet, normalise
from services.ranking.rankers import BM25, BM25_COORDINATION, CLIP_IMAGE, CLIP_TEXT, EVIDENCE_WEIGHTS

HYBRID_CHUNK = 256  # queries per block of full-pool scores: bounds memory at 256 x pool size


def standardise(x: np.ndarray) -> np.ndarray:
    """Each row to mean 0 and standard deviation 1 (a constant row to zeros)."""
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)


def standardise_by_group(x: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """Standardise each group of columns on its own. BM25 scores of items in different languages
    are not comparable (a query shares words with items in its own language only), so lexical
    evidence is standardised within each item language before it is added to the others."""
    if len(groups) <= 1:
        return standardise(x)
    out = np.empty_like(x)
    for columns in groups:
        out[:, columns] = standardise(x[:, columns])
    return out


def language_groups(languages: Sequence[str | None]) -> list[np.ndarray]:
    """Column positions of the items of each language (items without one form a group)."""
    return [
        np.array([n for n, lang in enumerate(languages) if lang == value])
        for value in sorted(set(languages), key=lambda v: v or "")
    ]


def image_scores(
    queries: np.ndarray, image_matrix: np.ndarray | None, rows: Sequence[int], n_items: int
) -> np.ndarray:
    """Query × item image similarities over the whole pool (:func:`over_pool`)."""
    if image_matrix is None or not len(rows):
        return np.zeros((len(queries), n_items), dtype=np.float32)
    return over_pool(queries @ image_matrix.T, rows, n_items)


def over_pool(sims: np.ndarray, rows: Sequence[int] | np.ndarray, n_items: int) -> np.ndarray:
    """Similarities to the items that have an image (``rows``: their pool positions) spread over
    the whole pool; items without an image get each query's worst score (no visual evidence for
    them, none against them either)."""
    visual = np.empty((len(sims), n_items), dtype=np.float32)
    visual[:] = sims.min(axis=1, keepdims=True)
    visual[:, rows] = sims
    return visual


def evidence_sum(
    parts: Mapping[str, np.ndarray],
    weights: Mapping[str, float] = EVIDENCE_WEIGHTS,
    groups: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Σ weight × z(score) over the rankers in ``parts`` (BM25 standardised within ``groups``)."""
    total: np.ndarray | None = None
    for name, scores in sorted(parts.items()):
        z = standardise_by_group(scores, groups) if name == BM25 else standardise(scores)
        term = weights.get(name, 1.0) * z
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no evidence to sum")
    return total


def hybrid_run(
    q_vec: np.ndarray,
    store: EmbeddingStore,
    pool: Pool,
    with_image: list[int],
    bm25: Bm25Index,
    queries: QuerySet,
    depth: int,
) -> dict[int, list[tuple[int, float]]]:
    """Per query, the weighted sum of z(CLIP image), z(CLIP text) and z(BM25) over every item; top ``depth``."""
    n_items = len(pool.item_ids)
    groups = language_groups(pool.languages)
    image_matrix = (
        normalise(store.get("image", [pool.image_keys[n] for n in with_image])) if with_image else None
    )
    text_matrix = normalise(store.get("text", pool.text_keys))
    run: dict[int, list[tuple[int, float]]] = {}
    for start in range(0, len(queries.ids), HYBRID_CHUNK):
        stop = min(start + HYBRID_CHUNK, len(queries.ids))
        block = q_vec[start:stop]
        fused = evidence_sum(
            {
                CLIP_IMAGE: image_scores(block, image_matrix, with_image, n_items),
                CLIP_TEXT: block @ text_matrix.T,
                BM25: np.stack(
                    [
                        bm25.scores(queries.texts[n], coordination=BM25_COORDINATION)
                        for n in range(start, stop)
                    ]
                ),
            },
            groups=groups,
        )
        top = np.argpartition(-fused, min(depth, n_items) - 1, axis=1)[:, :depth]
        for row, n in enumerate(range(start, stop)):
            order = top[row][np.lexsort((top[row], -fused[row, top[row]]))]
            run[queries.ids[n]] = [(pool.item_ids[j], float(fused[row, j])) for j in order]
    return run
