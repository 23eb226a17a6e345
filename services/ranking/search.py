"""Pool search for annotators: free text over the whole pool, or "more like this" from an item.

Free text goes through the CLIP image, CLIP text and BM25 rankers, fused as the candidate list is
(:data:`services.ranking.rankers.FUSION_WEIGHTS`); "more like this" is image → image, falling back
to the item's text when it has no image. The pool's unit vectors and BM25 index are the dataset's
search index (:mod:`services.ranking.search_index`): built at the end of the ranking job, keyed on
the ranking version read from the database, memory-mapped from the data folder. While it is being
prepared a search raises :class:`SearchPreparing` at once instead of making the annotator wait.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from db.enums import Role
from db.session import Database
from models.fusion import fuse_runs
from models.search import topk
from services.core.auth import Actor, allow, public
from services.core.errors import NotFoundError, QrelsError, ValidationError
from services.ranking.pool import normalise
from services.ranking.rankers import BM25, CLIP_IMAGE, CLIP_TEXT, FUSION_WEIGHTS
from services.ranking.search_index import SearchIndex, build_search_index, clear_search_cache, ready_index

if TYPE_CHECKING:
    from models.embedder import ClipEmbedder

log = logging.getLogger(__name__)

__all__ = [
    "SearchHit",
    "SearchPreparing",
    "build_search_index",
    "clear_search_cache",
    "index_after_ranking",
    "search_pool",
    "warm_search",
]

PREPARING = (
    "Preparing search over this dataset's pool (the first search since it was ranked or since the "
    "app started); it is ready in a few seconds."
)


class SearchPreparing(QrelsError):
    """The dataset's search index is being prepared in the background: ask again shortly."""


@dataclass(frozen=True)
class SearchHit:
    """One search result, best first; ``rankers``: each ranker's rank and score of the item."""

    item_id: int
    rankers: dict[str, Any]


@public("builds a search index after a ranking its caller was allowed to run")
def index_after_ranking(db: Database, dataset: str, *, data_dir: Path | None = None) -> None:
    """Build the search index of a freshly ranked dataset, so no annotator waits for it: the
    ranking job and ``cli.py rank`` call this at their end. A failure is logged, never raised
    (the ranking itself is done; the first search prepares the index instead)."""
    try:
        build_search_index(db, dataset, data_dir=data_dir)
    except Exception:
        log.exception("the search index of %s was not built after ranking; a search will build it", dataset)


@public("prepares a dataset's search index in the background; returns nothing to the caller")
def warm_search(db: Database, dataset: str, *, data_dir: Path | None = None) -> bool:
    """Start preparing the dataset's search index if it is not ready (never waits); True when ready.

    The workbench calls it when an annotator opens a dataset, so the first search finds it ready.
    """
    try:
        return ready_index(db, dataset, data_dir=data_dir) is not None
    except QrelsError:
        return False  # the search itself will say what is wrong


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
    wait: bool = False,
) -> list[SearchHit]:
    """Search the whole pool: free text (the same three rankers, fused) or "more like this"
    from an item (image → image, falling back to its text when it has no image).

    Raises:
        SearchPreparing: the search index is being prepared (``wait`` prepares it here instead).
        ValidationError: nothing to search for, or the pool is not embedded yet.
        NotFoundError: no such dataset, or ``like_item`` is not in it.
    """
    if (text is None or not text.strip()) and like_item is None:
        raise ValidationError("type something to search for")
    index = ready_index(
        db, dataset, data_dir=data_dir, embedder=embedder, need_embedder=like_item is None, wait=wait
    )
    if index is None:
        raise SearchPreparing(PREPARING)
    return _search(index, dataset, text, like_item, k)


def _search(
    index: SearchIndex, dataset: str, text: str | None, like_item: int | None, k: int
) -> list[SearchHit]:
    ids = index.item_ids
    depth = min(max(k * 3, 50), len(ids))
    runs: dict[str, dict[int, list[tuple[int, float]]]] = {}

    def hits(
        scores: np.ndarray, rows: np.ndarray, positions: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        at = rows if positions is None else positions[rows]
        return [(int(i), float(sc)) for i, sc in zip(ids[at], scores, strict=True)]

    if like_item is not None:
        position = index.position(like_item)
        if position is None:
            raise NotFoundError(f"item {like_item} is not in dataset {dataset!r}")
        row = index.image_row(position) if index.image_matrix is not None else None
        if index.image_matrix is not None and row is not None:
            vector = np.asarray(index.image_matrix[row : row + 1], dtype=np.float32)
            scores, idx = topk(vector, index.image_matrix, min(depth + 1, len(index.image_rows)))
            runs[CLIP_IMAGE] = {0: hits(scores[0], idx[0], index.image_rows)}
        else:
            vector = np.asarray(index.text_matrix[position : position + 1], dtype=np.float32)
            scores, idx = topk(vector, index.text_matrix, depth + 1)
            runs[CLIP_TEXT] = {0: hits(scores[0], idx[0])}
        for run in runs.values():
            run[0] = [(i, sc) for i, sc in run[0] if i != like_item]
    else:
        assert index.embedder is not None and text is not None  # ready_index(need_embedder=True)
        vector = normalise(index.embedder.embed_texts([text.strip()]))
        if index.image_matrix is not None:
            scores, idx = topk(vector, index.image_matrix, min(depth, len(index.image_rows)))
            runs[CLIP_IMAGE] = {0: hits(scores[0], idx[0], index.image_rows)}
        scores, idx = topk(vector, index.text_matrix, depth)
        runs[CLIP_TEXT] = {0: hits(scores[0], idx[0])}
        found, bm_scores = index.bm25.search([text.strip()], depth)
        runs[BM25] = {0: [(int(i), float(sc)) for i, sc in zip(found[0], bm_scores[0], strict=True)]}
    fused = fuse_runs(runs, k=k, weights=FUSION_WEIGHTS).get(0, [])
    return [SearchHit(c.item_id, c.rankers) for c in fused]
