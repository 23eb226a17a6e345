"""Find a named thing or say it does not exist: the one place these lookups are written."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Dataset, Query, User
from db.studies import Study
from services.core.errors import NotFoundError


def dataset_or_404(s: Session, name: str, *, lock: bool = False) -> Dataset:
    """The dataset called ``name``; ``lock`` takes its row lock (PostgreSQL) for the transaction.

    Raises:
        NotFoundError: no dataset of that name.
    """
    stmt = select(Dataset).where(Dataset.name == name)
    if lock:
        stmt = stmt.with_for_update()
    found = s.scalar(stmt)
    if found is None:
        raise NotFoundError(f"no dataset named {name!r}; `python cli.py datasets` lists them")
    return found


def dataset_id_or_404(s: Session, name: str) -> int:
    """The id of the dataset called ``name`` (reads one column, not the row)."""
    found = s.scalar(select(Dataset.id).where(Dataset.name == name))
    if found is None:
        raise NotFoundError(f"no dataset named {name!r}; `python cli.py datasets` lists them")
    return found


def query_or_404(s: Session, query_id: int) -> Query:
    found = s.get(Query, query_id)
    if found is None:
        raise NotFoundError(f"no query {query_id}")
    return found


def user_or_404(s: Session, name: str) -> User:
    found = s.scalar(select(User).where(User.name == name))
    if found is None:
        raise NotFoundError(f"no user named {name!r}; `python cli.py users list` lists them")
    return found


def study_or_404(s: Session, name: str, *, lock: bool = False) -> Study:
    """The study called ``name``; ``lock`` takes its row lock for the transaction.

    Raises:
        NotFoundError: no study of that name.
    """
    stmt = select(Study).where(Study.name == name)
    if lock:
        stmt = stmt.with_for_update()
    study = s.scalar(stmt)
    if study is None:
        raise NotFoundError(f"no study named {name!r}; `python cli.py study` lists what studies can do")
    return study
