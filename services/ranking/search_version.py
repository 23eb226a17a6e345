"""The version of a dataset's ranking and pool: the one place the key of search indexes is computed.

Pool search (:mod:`services.ranking.search`) keeps an index per dataset in memory and on disk; it
is reused only while :func:`ranking_version` returns what it returned when the index was built.
The version is read from the database, so every app process agrees on it, and it changes when:

- the dataset is re-ranked (the switch to a new generation of runs: a new newest id or, as SQLite
  can hand a deleted row's id out again, a new newest ``created_at``);
- the dataset is deleted (the function returns None) or re-imported (a new dataset row, a new
  ``created_at`` even where the id is reused);
- its pool changes (item count or newest item id);
- its CLIP model setting changes (another model's vectors).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Dataset, Item, RankerRun
from services.ranking.generations import active_runs

__all__ = ["ranking_version"]

Version = tuple[Any, ...]


def ranking_version(s: Session, dataset_id: int) -> Version | None:
    """A tuple of plain values that changes whenever the dataset's runs or pool change; None when
    the dataset does not exist."""
    runs = select(RankerRun).where(active_runs(dataset_id)).subquery()
    items = select(Item.id).where(Item.dataset_id == dataset_id).subquery()
    row = s.execute(
        select(
            Dataset.id,
            Dataset.created_at,
            Dataset.settings,
            select(func.max(runs.c.id)).scalar_subquery(),
            select(func.max(runs.c.created_at)).scalar_subquery(),
            select(func.count()).select_from(runs).scalar_subquery(),
            select(func.count()).select_from(items).scalar_subquery(),
            select(func.max(items.c.id)).scalar_subquery(),
        ).where(Dataset.id == dataset_id)
    ).one_or_none()
    if row is None:
        return None
    ds_id, created, settings, run_max, run_at, n_runs, n_items, item_max = row
    model = ((settings or {}).get("clip_model"), (settings or {}).get("clip_pretrained"))
    return (ds_id, str(created), run_max, str(run_at), n_runs, n_items, item_max, *model)
