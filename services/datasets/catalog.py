"""Datasets: listing, per-dataset settings and guidelines, and the items/queries behind a card."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from db.enums import ImageStatus, Role
from db.models import Assignment, Dataset, Item, Qrel, Query
from db.session import Database
from services.core.auth import EVERYONE, SYSTEM, Actor, allow
from services.core.cards import Card, card_of
from services.core.config import load_settings
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404, live_dataset
from services.core.media import MediaStore
from services.datasets.deletion import PurgeReport, mark_deleted, purge_as_job, resume_in_background
from services.datasets.settings import DatasetSettings

log = logging.getLogger(__name__)

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
    settings: DatasetSettings


@allow(*EVERYONE)
def list_datasets(db: Database, *, actor: Actor = SYSTEM) -> list[DatasetSummary]:
    """Every dataset with its counts (any logged-in role may see names and sizes)."""
    with db.read() as s:
        datasets = s.scalars(select(Dataset).where(live_dataset()).order_by(Dataset.name)).all()

        def counts(stmt) -> dict[int, int]:
            return dict(s.execute(stmt).all())

        items = counts(select(Item.dataset_id, func.count()).group_by(Item.dataset_id))
        missing = counts(
            select(Item.dataset_id, func.count())
            .where(Item.image_status == ImageStatus.MISSING)
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
                DatasetSettings.from_stored(d.settings),
            )
            for d in datasets
        ]


@allow(*EVERYONE)
def get_guidelines(db: Database, name: str, *, actor: Actor = SYSTEM) -> str:
    with db.read() as s:
        return dataset_or_404(s, name).guidelines


@allow(Role.ADMIN)
def set_guidelines(db: Database, name: str, markdown: str, *, actor: Actor = SYSTEM) -> None:
    """Replace a dataset's annotation guidelines (Markdown)."""
    if len(markdown) > MAX_GUIDELINES_CHARS:
        raise ValidationError(f"guidelines are limited to {MAX_GUIDELINES_CHARS:,} characters")
    with db.write() as s:
        dataset = dataset_or_404(s, name)
        dataset.guidelines = markdown


@allow(Role.ADMIN)
def delete_dataset(
    db: Database, name: str, *, background: bool = False, actor: Actor = SYSTEM
) -> PurgeReport | None:
    """Delete a dataset and everything in it, never holding the write lock for long.

    The dataset leaves every list at once (one short transaction); its rows then go in short
    batched transactions, here or in a background thread (``background``: the page's choice),
    and a delete whose process dies is resumed at the next start (services/datasets/deletion.py).

    Returns:
        What was deleted, or None when it goes on in the background.

    Raises:
        NotFoundError: no dataset of that name.
        ValidationError: a ranking job is running on it.
    """
    resume_in_background(db)  # an earlier delete that died half-way
    dataset_id = mark_deleted(db, name)
    if not background:
        return purge_as_job(db, dataset_id)

    def target() -> None:
        try:
            purge_as_job(db, dataset_id)
        except Exception:
            log.exception("deleting dataset %d failed; it resumes at the next start or delete", dataset_id)

    threading.Thread(target=target, name=f"delete-{dataset_id}", daemon=True).start()
    return None


@allow(Role.ADMIN)
def item_cards(
    db: Database,
    dataset: str,
    *,
    limit: int = 24,
    offset: int = 0,
    data_dir: Path | None = None,
    actor: Actor = SYSTEM,
) -> list[Card]:
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
        return [card_of(it, store) for it in rows]
