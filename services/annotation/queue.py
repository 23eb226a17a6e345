"""The annotator's queue: datasets with work, progress, the next and previous query, skip.

Pending queries come in queue order; a skipped query goes to the end and comes back once the
pending ones are done. An annotator only ever reaches their own assignments.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import AssignmentStatus, Role
from db.models import Assignment, Dataset, Query
from db.session import Database
from services.core.auth import Actor, allow
from services.core.errors import NotFoundError, PermissionDenied
from services.core.lookups import dataset_or_404, live_dataset


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    skipped: int


def own_assignment(s: Session, actor: Actor, assignment_id: int) -> Assignment:
    """The assignment, if it is in ``actor``'s queue."""
    a = s.get(Assignment, assignment_id)
    if a is None:
        raise NotFoundError(f"no assignment {assignment_id}")
    if a.user_id != actor.id:
        raise PermissionDenied("this query is in another annotator's queue")
    return a


@allow(Role.ANNOTATOR)
def my_datasets(db: Database, actor: Actor) -> list[str]:
    """Datasets in which the annotator has assignments."""
    with db.read() as s:
        rows = s.execute(
            select(Dataset.name)
            .join(Query, Query.dataset_id == Dataset.id)
            .join(Assignment, Assignment.query_id == Query.id)
            .where(Assignment.user_id == actor.id, live_dataset())
            .group_by(Dataset.name)
            .order_by(Dataset.name)
        )
        return [name for (name,) in rows]


@allow(Role.ANNOTATOR)
def progress(db: Database, actor: Actor, dataset: str) -> Progress:
    with db.read() as s:
        return progress_in(s, actor, dataset_or_404(s, dataset).id)


def progress_in(s: Session, actor: Actor, dataset_id: int) -> Progress:
    rows = dict(
        s.execute(
            select(Assignment.status, func.count())
            .join(Query)
            .where(Assignment.user_id == actor.id, Query.dataset_id == dataset_id)
            .group_by(Assignment.status)
        ).all()
    )
    return Progress(
        rows.get(AssignmentStatus.DONE, 0), sum(rows.values()), rows.get(AssignmentStatus.SKIPPED, 0)
    )


@allow(Role.ANNOTATOR)
def next_assignment(db: Database, actor: Actor, dataset: str, *, exclude: int | None = None) -> int | None:
    """The next query to do: pending ones in queue order, then skipped ones (they return later)."""
    with db.read() as s:
        return next_in(s, actor, dataset_or_404(s, dataset).id, exclude)


def next_in(s: Session, actor: Actor, dataset_id: int, exclude: int | None) -> int | None:
    base = (
        select(Assignment.id)
        .join(Query)
        .where(Assignment.user_id == actor.id, Query.dataset_id == dataset_id)
        .order_by(Assignment.skips, Assignment.position)
        .limit(1)
    )
    if exclude is not None:
        base = base.where(Assignment.id != exclude)
    for status in (AssignmentStatus.PENDING, AssignmentStatus.SKIPPED):
        found = s.scalar(base.where(Assignment.status == status))
        if found is not None:
            return found
    return None


@allow(Role.ANNOTATOR)
def previous_assignment(db: Database, actor: Actor, dataset: str, *, before: int | None) -> int | None:
    """The query the annotator finished just before ``before`` (the newest one when ``before`` is
    None or not finished): pressing "previous" again and again walks back through all of them."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        stmt = (
            select(Assignment.id)
            .join(Query)
            .where(
                Assignment.user_id == actor.id,
                Query.dataset_id == ds.id,
                Assignment.status == AssignmentStatus.DONE,
            )
            .order_by(Assignment.done_at.desc(), Assignment.id.desc())
            .limit(1)
        )
        current = s.get(Assignment, before) if before is not None else None
        if current is not None and current.user_id == actor.id and current.done_at is not None:
            stmt = stmt.where(
                (Assignment.done_at < current.done_at)
                | ((Assignment.done_at == current.done_at) & (Assignment.id < current.id))
            )
        elif before is not None:
            stmt = stmt.where(Assignment.id != before)
        return s.scalar(stmt)


@allow(Role.ANNOTATOR)
def skip(db: Database, actor: Actor, assignment_id: int) -> None:
    """Put a query back at the end of the queue."""
    with db.write() as s:
        a = own_assignment(s, actor, assignment_id)
        if a.status != AssignmentStatus.DONE:
            a.status = AssignmentStatus.SKIPPED
            a.skips += 1
