"""Queue order: each annotator's pending queries put in the dataset's ``queue_order``.

Only positions change. Who holds which query (overlap, balance) is the assignment's business and
stays as it is; gold queries keep their slots (one in every ``gold_rate``, at an unpredictable
place), and the other pending assignments are dealt into the remaining slots in order:

- ``shuffled``: the order queries were imported in, which is the order they were assigned in (a
  benchmark's pipeline — and the demo — lists them in no meaningful order);
- ``problems_first``: descending suspicion (:mod:`services.triage.signals`); queries not triaged
  yet come after the triaged ones, in import order.

Skipped and finished assignments are left where they are.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.enums import AssignmentStatus
from db.gold import GoldQuery
from db.models import Assignment, Query
from db.triage import QueryTriage

SHUFFLED = "shuffled"
PROBLEMS_FIRST = "problems_first"


def order_pending(s: Session, dataset_id: int, order: str) -> int:
    """Deal every annotator's pending non-gold assignments of the dataset into queue order.

    Returns:
        How many assignments moved.
    """
    rows = s.execute(
        select(
            Assignment.id,
            Assignment.user_id,
            Assignment.position,
            Query.position.label("query_position"),
            Query.id.label("query_id"),
            QueryTriage.suspicion,
        )
        .join(Query, Query.id == Assignment.query_id)
        .outerjoin(QueryTriage, QueryTriage.query_id == Query.id)
        .outerjoin(GoldQuery, GoldQuery.query_id == Query.id)
        .where(
            Query.dataset_id == dataset_id,
            Assignment.status == AssignmentStatus.PENDING,
            GoldQuery.id.is_(None),
        )
    ).all()
    by_user: dict[int, list] = defaultdict(list)
    for row in rows:
        by_user[row.user_id].append(row)

    def key(row) -> tuple:
        imported = (row.query_position, row.query_id)
        if order != PROBLEMS_FIRST:
            return imported
        return (row.suspicion is None, -(row.suspicion or 0.0), *imported)

    moves = []
    for held in by_user.values():
        slots = sorted(row.position for row in held)
        for slot, row in zip(slots, sorted(held, key=key), strict=True):
            if row.position != slot:
                moves.append({"id": row.id, "position": slot})
    if moves:
        s.execute(update(Assignment), moves)
    return len(moves)


def pending_queue(s: Session, user_id: int, dataset_id: int) -> list[int]:
    """The query ids of a user's pending and skipped assignments, in the order the queue serves them."""
    rows = s.execute(
        select(Assignment.query_id, Assignment.status)
        .join(Query, Query.id == Assignment.query_id)
        .where(
            Assignment.user_id == user_id,
            Query.dataset_id == dataset_id,
            Assignment.status != AssignmentStatus.DONE,
        )
        .order_by(Assignment.skips, Assignment.position)
    ).all()
    pending = [qid for qid, status in rows if status == AssignmentStatus.PENDING]
    return pending + [qid for qid, status in rows if status != AssignmentStatus.PENDING]
