"""Pool search for annotators: free text over the whole pool, or "more like this" from an item.

Free text is ranked as the ``hybrid`` ranker ranks a query: the CLIP image, CLIP text and BM25
scores over the whole pool, standardised and summed (:mod:`services.ranking.hybrid`); "more like
this" sums the item's image and text similarities. The pool's normalised vectors and BM25 index are built
once per (database, dataset) and cached; the ranking job clears the cache
(:func:`clear_search_cache`) when it writes new runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from db.enums import Role
from db.models import Item
from db.session import Database
from models.embedder import ClipEmbedder
from models.lexical import Bm25Index
from services.core.auth import Actor, allow
from services.core.errors import NotFoundError, ValidationError
from services.core.lookups import dataset_or_404
from services.ranking.hybrid import evidence_sum, image_scores
from services.ranking.models import embedder_for, store_for
from services.ranking.pool import load_pool, normalise, rows_with_image
from services.ranking.rankers import BM25, BM25_COORDINATION, CLIP_IMAGE, CLIP_TEXT


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


def _language_groups(db: Database, dataset: str, item_ids: list[int]) -> list[np.ndarray]:
    """Positions in ``item_ids`` (ascending ids) of each item language, for standardising BM25
    within each language as the ``hybrid`` ranker does: one cheap count for a one-language pool,
    else the ids of the items outside its main language."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        counts = s.execute(
            select(Item.language, func.count()).where(Item.dataset_id == ds.id).group_by(Item.language)
        ).all()
        if len(counts) <= 1:
            return []
        main = max(counts, key=lambda row: (row[1], row[0] or ""))[0]
        others = s.execute(
            select(Item.id, Item.language)
            .where(Item.dataset_id == ds.id, Item.language.is_distinct_from(main))
            .order_by(Item.id)
        ).all()
    ids = np.asarray(item_ids)
    by_language: dict[str | None, list[int]] = {}
    for item_id, language in others:
        by_language.setdefault(language, []).append(item_id)
    groups, rest = [], np.ones(len(ids), dtype=bool)
    for language in sorted(by_language, key=lambda v: v or ""):
        wanted = np.asarray(by_language[language])
        at = np.searchsorted(ids, wanted).clip(0, max(len(ids) - 1, 0))
        positions = at[ids[at] == wanted]  # items added since the index was built are not in it
        rest[positions] = False
        groups.append(positions)
    return [np.flatnonzero(rest), *[g for g in groups if len(g)]]


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
    """Search the whole pool: free text, or "more like this" from an item.

    Free text is ranked as the ``hybrid`` ranker ranks a query: z(CLIP image) + z(CLIP text) +
    z(BM25 with coordination, within each item language) over every item, weighted
    (:func:`services.ranking.hybrid.evidence_sum`), so the exact attribute words BM25 finds
    ("Osmund", "brass", "medium"), the same attributes in the other language (the text tower) and
    what only the image shows ("solid", "red") must all hold for an item to come first. "More like
    this" adds the item's image similarity and its text similarity (the text alone when it has no
    image). Each hit names every ranker's rank and score of it over the whole pool (BM25 only
    where it matched a word, the image only where the item has one).
    """
    if (text is None or not text.strip()) and like_item is None:
        raise ValidationError("type something to search for")
    index = _search_index(db, dataset, data_dir, embedder)
    n_items = len(index.item_ids)
    parts: dict[str, np.ndarray] = {}
    if like_item is not None:
        try:
            position = index.item_ids.index(like_item)
        except ValueError as e:
            raise NotFoundError(f"item {like_item} is not in dataset {dataset!r}") from e
        if index.image_matrix is not None and position in index.image_rows:
            vector = index.image_matrix[index.image_rows.index(position)][None, :]
            parts[CLIP_IMAGE] = image_scores(vector, index.image_matrix, index.image_rows, n_items)[0]
        parts[CLIP_TEXT] = index.text_matrix @ index.text_matrix[position]
        exclude = {position}
    else:
        query = text.strip()
        vector = normalise(index.embedder.embed_texts([query]))
        parts[CLIP_IMAGE] = image_scores(vector, index.image_matrix, index.image_rows, n_items)[0]
        parts[CLIP_TEXT] = (vector @ index.text_matrix.T)[0]
        parts[BM25] = index.bm25.scores(query, coordination=BM25_COORDINATION)
        exclude = set()
    groups = _language_groups(db, dataset, index.item_ids) if BM25 in parts else []
    fused = evidence_sum({name: scores[None, :] for name, scores in parts.items()}, groups=groups)[0]
    if exclude:
        fused[list(exclude)] = -np.inf
    take = min(k, n_items - len(exclude))
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
        hits.append(SearchHit(index.item_ids[j], rankers))
    return hits
