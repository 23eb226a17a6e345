"""Find a named thing or say it does not exist: the one place these lookups are written."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from db.models import Dataset, Query, User
from db.studies import Study
from services.core.errors import NotFoundError

T = TypeVar("T")

# What to say when a name is unknown: what it is, and where the names are listed.
_UNKNOWN = {
    Dataset: ("dataset", "`python cli.py datasets` lists them"),
    User: ("user", "`python cli.py users list` lists them"),
    Study: ("study", "the Studies page lists them"),
}


def live_dataset() -> ColumnElement[bool]:
    """The condition on :class:`Dataset` that leaves out datasets being deleted.

    A deleted dataset is marked (and renamed) in one short transaction and its rows go in batches
    afterwards (services/datasets/deletion.py); every list of datasets filters with this so it
    disappears at once.
    """
    return Dataset.deleted_at.is_(None)


def _by_name(s: Session, model: type[T], name: str, lock: bool, column: Any = None) -> Any:
    stmt = select(column if column is not None else model).where(model.name == name)  # type: ignore[attr-defined]
    if model is Dataset:
        stmt = stmt.where(live_dataset())
    if lock:
        stmt = stmt.with_for_update()
    found = s.scalar(stmt)
    if found is None:
        what, where = _UNKNOWN[model]
        raise NotFoundError(f"no {what} named {name!r}; {where}")
    return found


def dataset_or_404(s: Session, name: str, *, lock: bool = False) -> Dataset:
    """The dataset called ``name``; ``lock`` takes its row lock (PostgreSQL) for the transaction.

    Raises:
        NotFoundError: no dataset of that name.
    """
    return _by_name(s, Dataset, name, lock)


def dataset_id_or_404(s: Session, name: str) -> int:
    """The id of the dataset called ``name`` (reads one column, not the row)."""
    return _by_name(s, Dataset, name, False, Dataset.id)


def user_or_404(s: Session, name: str) -> User:
    return _by_name(s, User, name, False)


def study_or_404(s: Session, name: str, *, lock: bool = False) -> Study:
    """The study called ``name``; ``lock`` takes its row lock for the transaction."""
    return _by_name(s, Study, name, lock)


def query_or_404(s: Session, query_id: int) -> Query:
    found = s.get(Query, query_id)
    if found is None:
        raise NotFoundError(f"no query {query_id}")
    return found
