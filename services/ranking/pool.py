"""A dataset's pool and queries as the rankers read them.

Items (ids, image and text content keys, texts, languages) and queries (texts and the reference
items or images of composed queries) are loaded in one session; which items have a stored image
vector, and unit-length vectors for inner-product search, are computed from the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import ImageStatus
from db.models import Item, Query, QueryRef
from models.store import EmbeddingStore, item_text_key
from services.core.lookups import dataset_or_404
from services.datasets.settings import DatasetSettings


@dataclass
class Pool:
    """A dataset's items, in id order; ``image_keys[n]`` is None where item n has no image."""

    dataset_id: int
    settings: DatasetSettings
    item_ids: list[int]
    ext_ids: list[str]
    image_keys: list[str | None]
    image_ext: list[str | None]
    text_keys: list[str]
    texts: list[str]
    languages: list[str | None]


@dataclass
class QuerySet:
    """A dataset's queries in order, with the reference items or images of composed queries."""

    ids: list[int]
    texts: list[str]
    ref_items: list[list[int]]
    ref_image_keys: list[list[str]]


def load_pool(s: Session, dataset: str) -> Pool:
    ds = dataset_or_404(s, dataset)
    rows = s.execute(
        select(
            Item.id,
            Item.ext_id,
            Item.title,
            Item.text,
            Item.image_sha256,
            Item.image_ext,
            Item.image_status,
            Item.language,
        )
        .where(Item.dataset_id == ds.id)
        .order_by(Item.id)
    ).all()
    return Pool(
        ds.id,
        DatasetSettings.from_stored(ds.settings),
        [r.id for r in rows],
        [r.ext_id for r in rows],
        [r.image_sha256 if r.image_status == ImageStatus.OK else None for r in rows],
        [r.image_ext for r in rows],
        [item_text_key(r.title, r.text) for r in rows],
        [f"{r.title}\n{r.text}" for r in rows],
        [r.language for r in rows],
    )


def load_queries(s: Session, dataset_id: int) -> QuerySet:
    queries = s.execute(
        select(Query.id, Query.text).where(Query.dataset_id == dataset_id).order_by(Query.position, Query.id)
    ).all()
    refs = s.execute(
        select(QueryRef.query_id, QueryRef.item_id, QueryRef.image_sha256)
        .join(Query, Query.id == QueryRef.query_id)
        .where(Query.dataset_id == dataset_id)
        .order_by(QueryRef.query_id, QueryRef.position)
    ).all()
    ref_items: dict[int, list[int]] = {}
    ref_images: dict[int, list[str]] = {}
    for qid, item_id, sha in refs:
        if item_id is not None:
            ref_items.setdefault(qid, []).append(item_id)
        elif sha is not None:
            ref_images.setdefault(qid, []).append(sha)
    return QuerySet(
        [q.id for q in queries],
        [q.text for q in queries],
        [ref_items.get(q.id, []) for q in queries],
        [ref_images.get(q.id, []) for q in queries],
    )


def load_ref_images(s: Session, dataset_id: int) -> list[tuple[str, str | None]]:
    """(sha256, extension) of every reference image of the dataset's composed queries that is not an item."""
    return [
        (sha, ext)
        for sha, ext in s.execute(
            select(QueryRef.image_sha256, QueryRef.image_ext)
            .join(Query)
            .where(Query.dataset_id == dataset_id, QueryRef.image_sha256.is_not(None))
        )
    ]


def rows_with_image(store: EmbeddingStore, pool: Pool) -> list[int]:
    """Positions of the items whose image vector is stored (unreadable images have none)."""
    absent = set(store.missing("image", sorted({k for k in pool.image_keys if k})))
    return [n for n, key in enumerate(pool.image_keys) if key and key not in absent]


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in float32."""
    x = x.astype(np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
