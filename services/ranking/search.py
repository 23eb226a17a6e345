"""Pool search for annotators: free text over the whole pool, or "more like this" from an item.

Free text is ranked as the ``hybrid`` ranker ranks a query: the CLIP image, CLIP text and BM25
scores over the whole pool, standardised (BM25 within each item language) and summed
(:mod:`services.ranking.hybrid`); "more like this" sums the item's image and text similarities.
The pool's unit vectors, BM25 index and item languages are the dataset's search index
(:mod:`services.ranking.search_index`): built at the end of the ranking job, keyed on the ranking
version read from the database, memory-mapped from the data folder. While it is being prepared a
search raises :class:`SearchPreparing` at once instead of making the annotator wait.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from db.enums import Role
from db.session import Database
from models.search import all_scores
from services.core.auth import Actor, allow, public
from services.core.errors import NotFoundError, QrelsError, ValidationError
from services.ranking.hybrid import evidence_sum, over_pool
from services.ranking.pool import normalise
from services.ranking.rankers import BM25, BM25_COORDINATION, CLIP_IMAGE, CLIP_TEXT
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
    """Search the whole pool: free text, or "more like this" from an item.

    Free text is ranked as the ``hybrid`` ranker ranks a query: z(CLIP image) + z(CLIP text) +
    z(BM25 with coordination, within each item language) over every item, weighted
    (:func:`services.ranking.hybrid.evidence_sum`), so the exact attribute words BM25 finds
    ("Osmund", "brass", "medium"), the same attributes in the other language (the text tower) and
    what only the image shows ("solid", "red") must all hold for an item to come first. "More like
    this" adds the item's image similarity and its text similarity (the text alone when it has no
    image). Each hit names every ranker's rank and score of it over the whole pool (BM25 only
    where it matched a word, the image only where the item has one).

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


def _image_scores(vector: np.ndarray, index: SearchIndex) -> np.ndarray:
    """Image similarity of every pool item, as the hybrid ranker spreads it (:func:`over_pool`)."""
    if index.image_matrix is None or not len(index.image_rows):
        return np.zeros(len(index.item_ids), dtype=np.float32)
    return over_pool(all_scores(vector, index.image_matrix), index.image_rows, len(index.item_ids))[0]


def _search(
    index: SearchIndex, dataset: str, text: str | None, like_item: int | None, k: int
) -> list[SearchHit]:
    n_items = len(index.item_ids)
    parts: dict[str, np.ndarray] = {}
    exclude: int | None = None
    if like_item is not None:
        position = index.position(like_item)
        if position is None:
            raise NotFoundError(f"item {like_item} is not in dataset {dataset!r}")
        row = index.image_row(position) if index.image_matrix is not None else None
        if index.image_matrix is not None and row is not None:
            vector = np.asarray(index.image_matrix[row : row + 1], dtype=np.float32)
            parts[CLIP_IMAGE] = _image_scores(vector, index)
        text_vector = np.asarray(index.text_matrix[position : position + 1], dtype=np.float32)
        parts[CLIP_TEXT] = all_scores(text_vector, index.text_matrix)[0]
        exclude = position
    else:
        assert index.embedder is not None and text is not None  # ready_index(need_embedder=True)
        query = text.strip()
        vector = normalise(index.embedder.embed_texts([query]))
        parts[CLIP_IMAGE] = _image_scores(vector, index)
        parts[CLIP_TEXT] = all_scores(vector, index.text_matrix)[0]
        parts[BM25] = np.asarray(index.bm25.scores(query, coordination=BM25_COORDINATION), dtype=np.float32)
    groups = index.language_groups if BM25 in parts else []
    fused = evidence_sum({name: scores[None, :] for name, scores in parts.items()}, groups=groups)[0]
    if exclude is not None:
        fused[exclude] = -np.inf
    take = min(k, n_items - (exclude is not None))
    top = np.argpartition(-fused, take - 1)[:take] if take > 0 else np.empty(0, dtype=np.int64)
    top = top[np.lexsort((top, -fused[top]))]
    with_image = np.zeros(n_items, dtype=bool)
    with_image[index.image_rows] = True
    hits = []
    for j in top:
        rankers: dict[str, Any] = {}
        for name, scores in sorted(parts.items()):
            if (name == BM25 and scores[j] <= 0) or (name == CLIP_IMAGE and not with_image[j]):
                continue  # no evidence from this ranker
            rankers[name] = {"rank": int((scores > scores[j]).sum()) + 1, "score": float(scores[j])}
        hits.append(SearchHit(int(index.item_ids[j]), rankers))
    return hits
