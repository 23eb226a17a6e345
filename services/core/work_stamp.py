"""A dataset's work stamp: a few values read from the database that change whenever its work does.

Cached figures (dashboard, agreement, gold, the review queue; see :mod:`services.core.memo`) are
keyed on a stamp, never on a timer or a process-local flag, so every app process sees the same
thing: new work changes the stamp in the database, and the next refresh anywhere recomputes.

What changes what:

- a submit adds a submission (ids only grow within a dataset; an undo stamps ``undone_at``);
- a review decision adds a query or item adjudication;
- gold answers are replaced (delete + insert: the count, newest id or newest time moves);
- settings (gold rate, thresholds, the demo's truth file) are part of the dataset row;
- a delete or re-import makes a new dataset row (a new id, or at least a new ``created_at``:
  SQLite may hand out a deleted row's id again).

Everything is read with one statement of scalar subqueries, each served by an index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.gold import GoldQuery
from db.models import Dataset, ItemAdjudication, Query, QueryAdjudication, Submission

__all__ = ["WorkStamp", "work_stamp"]


@dataclass(frozen=True)
class WorkStamp:
    """Compare stamps with ``==``; each part is a tuple of plain values."""

    dataset: tuple[Any, ...]  # id, created_at, settings (JSON)
    submissions: tuple[Any, ...]  # newest id, how many were undone
    adjudications: tuple[Any, ...]  # newest query adjudication id, newest item adjudication id
    gold: tuple[Any, ...]  # gold queries: count, newest id, newest created_at

    @property
    def votes(self) -> tuple[Any, ...]:
        """The part that decides who voted what (the review queue's disputes)."""
        return (self.dataset, self.submissions)


def _of_dataset(column: Any, ds_id: int, via: Any) -> Any:
    return select(column).join(Query, Query.id == via).where(Query.dataset_id == ds_id).scalar_subquery()


def work_stamp(s: Session, dataset_id: int) -> WorkStamp | None:
    """The stamp of a dataset's work now; None when the dataset does not exist (deleted)."""
    row = s.execute(
        select(
            Dataset.id,
            Dataset.created_at,
            Dataset.settings,
            _of_dataset(func.max(Submission.id), dataset_id, Submission.query_id),
            _of_dataset(func.count(Submission.undone_at), dataset_id, Submission.query_id),
            _of_dataset(func.max(QueryAdjudication.id), dataset_id, QueryAdjudication.query_id),
            _of_dataset(func.max(ItemAdjudication.id), dataset_id, ItemAdjudication.query_id),
            _of_dataset(func.count(GoldQuery.id), dataset_id, GoldQuery.query_id),
            _of_dataset(func.max(GoldQuery.id), dataset_id, GoldQuery.query_id),
            _of_dataset(func.max(GoldQuery.created_at), dataset_id, GoldQuery.query_id),
        ).where(Dataset.id == dataset_id)
    ).one_or_none()
    if row is None:
        return None
    ds_id, created, settings, sub_max, undone, qadj, iadj, n_gold, gold_max, gold_at = row
    return WorkStamp(
        (ds_id, str(created), json.dumps(settings, sort_keys=True, default=str)),
        (sub_max, undone),
        (qadj, iadj),
        (n_gold, gold_max, str(gold_at)),
    )
