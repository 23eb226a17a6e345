"""Datasets: listing, per-dataset settings and guidelines, and the items/queries behind a card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from db.models import (
    IMAGE_MISSING,
    ROLE_ADMIN,
    Assignment,
    Dataset,
    Item,
    Qrel,
    Query,
)
from db.session import Database
from services.auth import SYSTEM, Actor, require_role
from services.config import load_settings
from services.errors import NotFoundError, ValidationError
from services.media import MediaStore

MAX_GUIDELINES_CHARS = 50_000


@dataclass(frozen=True)
class DatasetSummary:
    id: int
    name: str
    source_format: str
    is_demo: bool
    created_at: datetime
    n_items: int
    n_queries: int
    n_qrels: int
    n_missing_images: int
    n_assignments: int
    n_assignments_done: int
    settings: dict[str, Any]


def list_datasets(db: Database) -> list[DatasetSummary]:
    """Every dataset with its counts (any logged-in role may see names and sizes)."""
    with db.read() as s:
        datasets = s.scalars(select(Dataset).order_by(Dataset.name)).all()

        def counts(stmt) -> dict[int, int]:
            return dict(s.execute(stmt).all())

        items = counts(select(Item.dataset_id, func.count()).group_by(Item.dataset_id))
        missing = counts(
            select(Item.dataset_id, func.count())
            .where(Item.image_status == IMAGE_MISSING)
            .group_by(Item.dataset_id)
        )
        queries = counts(select(Query.dataset_id, func.count()).group_by(Query.dataset_id))
        qrels = counts(
            select(Query.dataset_id, func.count())
            .join(Qrel, Qrel.query_id == Query.id)
            .group_by(Query.dataset_id)
        )
        assigned = counts(
            select(Query.dataset_id, func.count())
            .join(Assignment, Assignment.query_id == Query.id)
            .group_by(Query.dataset_id)
        )
        done = counts(
            select(Query.dataset_id, func.count())
            .join(Assignment, Assignment.query_id == Query.id)
            .where(Assignment.status == "done")
            .group_by(Query.dataset_id)
        )
        return [
            DatasetSummary(
                d.id,
                d.name,
                d.source_format,
                d.is_demo,
                d.created_at,
                items.get(d.id, 0),
                queries.get(d.id, 0),
                qrels.get(d.id, 0),
                missing.get(d.id, 0),
                assigned.get(d.id, 0),
                done.get(d.id, 0),
                dict(d.settings or {}),
            )
            for d in datasets
        ]


def dataset_id(db: Database, name: str) -> int:
    with db.read() as s:
        found = s.scalar(select(Dataset.id).where(Dataset.name == name))
    if found is None:
        raise NotFoundError(f"no dataset named {name!r}; `python cli.py datasets` lists them")
    return found


def get_guidelines(db: Database, name: str) -> str:
    with db.read() as s:
        text = s.scalar(select(Dataset.guidelines).where(Dataset.name == name))
    if text is None:
        raise NotFoundError(f"no dataset named {name!r}")
    return text


def set_guidelines(db: Database, name: str, markdown: str, *, actor: Actor = SYSTEM) -> None:
    """Replace a dataset's annotation guidelines (Markdown)."""
    require_role(actor, ROLE_ADMIN)
    if len(markdown) > MAX_GUIDELINES_CHARS:
        raise ValidationError(f"guidelines are limited to {MAX_GUIDELINES_CHARS:,} characters")
    with db.write() as s:
        dataset = s.scalar(select(Dataset).where(Dataset.name == name))
        if dataset is None:
            raise NotFoundError(f"no dataset named {name!r}")
        dataset.guidelines = markdown


SETTING_TYPES = {
    "k": int,
    "show_scores": bool,
    "overlap": int,
    "clip_model": str,
    "clip_pretrained": str,
    "truth_path": str,
}


def update_settings(
    db: Database, name: str, changes: dict[str, Any], *, actor: Actor = SYSTEM
) -> dict[str, Any]:
    """Change per-dataset settings.

    ``k``: candidate depth 1-1000; ``show_scores``; ``overlap``; ``clip_model`` and
    ``clip_pretrained``: the open_clip model and tag or local checkpoint that embeds this dataset.
    """
    require_role(actor, ROLE_ADMIN)
    for key, value in changes.items():
        kind = SETTING_TYPES.get(key)
        if kind is None:
            raise ValidationError(f"unknown setting {key!r}; known: {', '.join(SETTING_TYPES)}")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValidationError(f"setting {key!r} must be {kind.__name__}")
    if "k" in changes and not 1 <= changes["k"] <= 1000:
        raise ValidationError("k must be between 1 and 1000")
    if "overlap" in changes and not 1 <= changes["overlap"] <= 10:
        raise ValidationError("overlap must be between 1 and 10")
    with db.write() as s:
        dataset = s.scalar(select(Dataset).where(Dataset.name == name))
        if dataset is None:
            raise NotFoundError(f"no dataset named {name!r}")
        dataset.settings = {**(dataset.settings or {}), **changes}
        return dict(dataset.settings)


def delete_dataset(db: Database, name: str, *, actor: Actor = SYSTEM) -> None:
    require_role(actor, ROLE_ADMIN)
    with db.write() as s:
        result = s.execute(delete(Dataset).where(Dataset.name == name))
        if result.rowcount == 0:
            raise NotFoundError(f"no dataset named {name!r}")


@dataclass(frozen=True)
class ItemCard:
    """What a card shows of an item; ``thumb`` is None when the item has no stored image."""

    id: int
    ext_id: str
    title: str
    text: str
    category: str | None
    language: str | None
    thumb: str | None
    image_status: str


def item_cards(
    db: Database, dataset: str, *, limit: int = 24, offset: int = 0, data_dir: Path | None = None
) -> list[ItemCard]:
    """A page of a dataset's items, in import order, with thumbnail paths."""
    store = MediaStore(data_dir or load_settings().data_dir)
    with db.read() as s:
        rows = s.execute(
            select(Item)
            .join(Dataset, Dataset.id == Item.dataset_id)
            .where(Dataset.name == dataset)
            .order_by(Item.id)
            .limit(limit)
            .offset(offset)
        ).scalars()
        return [
            ItemCard(
                it.id,
                it.ext_id,
                it.title,
                it.text,
                it.category,
                it.language,
                str(store.thumb_path(it.image_sha256)) if it.image_sha256 else None,
                it.image_status,
            )
            for it in rows
        ]
