"""Giving a dataset's queries to annotators: balanced, with an overlap, never twice to one person."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from db.enums import Role
from db.models import Assignment, Dataset, Query, User
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssignmentReport:
    dataset: str
    overlap: int
    n_new: int
    per_annotator: dict[str, int]  # total assignments in the dataset after this call
    n_queries_short: int  # queries that could not reach the overlap (too few annotators)


@allow(Role.ADMIN)
def assign(
    db: Database,
    dataset: str,
    *,
    overlap: int = 2,
    annotators: list[str] | None = None,
    actor: Actor = SYSTEM,
) -> AssignmentReport:
    """Top up every query of ``dataset`` to ``overlap`` annotators, balancing the load.

    Existing assignments are kept, so the call is incremental and idempotent. Each query goes to
    the annotators with the fewest assignments in the dataset (ties by name), never one who has
    it already. The dataset row is locked for the transaction, so concurrent calls from several
    app processes cannot push a query past the overlap.

    Raises:
        ValidationError: overlap < 1, an unknown or non-annotator name, or no annotators.
    """
    if overlap < 1:
        raise ValidationError("overlap must be at least 1")
    with db.write() as s:
        ds = dataset_or_404(s, dataset, lock=True)
        stmt = select(User).where(User.role == Role.ANNOTATOR, User.is_active.is_(True)).order_by(User.name)
        pool = {u.name: u for u in s.scalars(stmt)}
        if annotators:
            unknown = [a for a in annotators if a not in pool]
            if unknown:
                raise ValidationError(f"not active annotators: {', '.join(unknown)}")
            chosen = [pool[a] for a in sorted(set(annotators))]
        else:
            chosen = list(pool.values())
        if not chosen:
            raise ValidationError("there are no active annotators; add some with `cli.py users add`")

        queries = s.execute(
            select(Query.id).where(Query.dataset_id == ds.id).order_by(Query.position, Query.id)
        )
        query_ids = [q for (q,) in queries]
        existing = s.execute(
            select(Assignment.query_id, Assignment.user_id).join(Query).where(Query.dataset_id == ds.id)
        ).all()
        holders: dict[int, set[int]] = {}
        load: Counter[int] = Counter()
        for qid, uid in existing:
            holders.setdefault(qid, set()).add(uid)
            load[uid] += 1
        next_position = dict(
            s.execute(
                select(Assignment.user_id, func.max(Assignment.position))
                .join(Query)
                .where(Query.dataset_id == ds.id)
                .group_by(Assignment.user_id)
            ).all()
        )

        rows = []
        short = 0
        for qid in query_ids:
            have = holders.setdefault(qid, set())
            need = overlap - len(have)
            if need <= 0:
                continue
            free = sorted((u for u in chosen if u.id not in have), key=lambda u: (load[u.id], u.name))
            if len(free) < need:
                short += 1
            for user in free[:need]:
                position = next_position.get(user.id, -1) + 1
                next_position[user.id] = position
                rows.append({"query_id": qid, "user_id": user.id, "status": "pending", "position": position})
                have.add(user.id)
                load[user.id] += 1
        if rows:
            s.execute(insert(Assignment), rows)
        names = {u.id: u.name for u in pool.values()}
        per_annotator = {
            names.get(uid, str(uid)): n
            for uid, n in sorted(load.items(), key=lambda kv: names.get(kv[0], ""))
        }
    log.info("assigned %d new query slots in %s (overlap %d)", len(rows), dataset, overlap)
    return AssignmentReport(dataset, overlap, len(rows), per_annotator, short)


@dataclass(frozen=True)
class QueueSize:
    dataset: str
    annotator: str
    assigned: int
    done: int
    skipped: int


@allow(Role.ADMIN)
def queue_sizes(db: Database, *, actor: Actor = SYSTEM) -> list[QueueSize]:
    """Per dataset and annotator: how many queries are assigned, done and skipped (counts only)."""
    with db.read() as s:
        rows = s.execute(
            select(Dataset.name, User.name, Assignment.status, func.count())
            .join(Query, Query.id == Assignment.query_id)
            .join(Dataset, Dataset.id == Query.dataset_id)
            .join(User, User.id == Assignment.user_id)
            .group_by(Dataset.name, User.name, Assignment.status)
        ).all()
    table: dict[tuple[str, str], dict[str, int]] = {}
    for dataset, name, status, n in rows:
        table.setdefault((dataset, name), {})[status] = n
    return [
        QueueSize(d, n, sum(c.values()), c.get("done", 0), c.get("skipped", 0))
        for (d, n), c in sorted(table.items())
    ]
