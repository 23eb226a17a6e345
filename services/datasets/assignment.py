"""Giving a dataset's queries to annotators: balanced, with an overlap, never twice to one person.

Gold queries (:mod:`db.gold`) are not topped up to the overlap like the others: each annotator
gets one at the dataset's ``gold_rate`` (one in every N of their assignments), never the same one
twice, placed at an unpredictable spot within each run of N positions of their queue, so nothing
in the queue's order gives them away.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from db.enums import Role
from db.gold import GoldQuery
from db.models import Assignment, Dataset, Query, User
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404, live_dataset
from services.datasets.settings import DatasetSettings
from services.triage.order import order_pending

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssignmentReport:
    dataset: str
    overlap: int
    n_new: int
    per_annotator: dict[str, int]  # total assignments in the dataset after this call
    n_queries_short: int  # queries that could not reach the overlap (too few annotators)
    n_gold_new: int = 0  # gold queries mixed in by this call (counted in n_new too)


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
    it already; each queue is then put in the dataset's ``queue_order`` (services.triage.order).
    The dataset row is locked for the transaction, so concurrent calls from several
    app processes cannot push a query past the overlap. Gold queries are mixed into each chosen
    annotator's queue at the dataset's ``gold_rate`` (see the module doc).

    Raises:
        ValidationError: overlap < 1, an unknown or non-annotator name, no annotators, or a
            ``gold_rate`` of 1 (every assignment gold).
    """
    if overlap < 1:
        raise ValidationError("overlap must be at least 1")
    with db.write() as s:
        ds = dataset_or_404(s, dataset, lock=True)
        settings = DatasetSettings.from_stored(ds.settings)
        rate = settings.gold_rate
        if rate == 1:
            raise ValidationError("gold_rate 1 would make every assignment gold; use 0 (none) or at least 2")
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
        gold = set(
            s.scalars(
                select(GoldQuery.query_id)
                .join(Query, Query.id == GoldQuery.query_id)
                .where(Query.dataset_id == ds.id)
            )
        )
        query_ids = [q for (q,) in queries if q not in gold]
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

        rows: list[dict] = []
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
                rows.append({"query_id": qid, "user_id": user.id, "status": "pending"})
                have.add(user.id)
                load[user.id] += 1
        rows, n_gold = _with_gold(rows, chosen, holders, gold, rate, next_position)
        for uid in {r["user_id"] for r in rows}:
            load[uid] = sum(1 for members in holders.values() if uid in members)
        if rows:
            s.execute(insert(Assignment), rows)
            order_pending(s, ds.id, settings.queue_order)  # new work in the dataset's queue order
        names = {u.id: u.name for u in pool.values()}
        per_annotator = {
            names.get(uid, str(uid)): n
            for uid, n in sorted(load.items(), key=lambda kv: names.get(kv[0], ""))
        }
    log.info("assigned %d new query slots in %s (overlap %d, %d gold)", len(rows), dataset, overlap, n_gold)
    return AssignmentReport(dataset, overlap, len(rows), per_annotator, short, n_gold)


def _offset(user_id: int, block: int, rate: int) -> int:
    """Where in the ``block``-th run of ``rate`` positions a user's gold query goes (stable, unguessable)."""
    digest = hashlib.sha256(f"gold:{user_id}:{block}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % rate


def _with_gold(
    rows: list[dict],
    chosen: list[User],
    holders: dict[int, set[int]],
    gold: set[int],
    rate: int,
    next_position: dict[int, int],
) -> tuple[list[dict], int]:
    """The new rows with gold queries interleaved, every row given its queue position.

    An annotator holding ``n`` normal assignments is owed ``n // (rate - 1)`` gold ones (one in
    every ``rate``); the ``g``-th goes at a hashed offset within positions ``g*rate .. g*rate+rate-1``
    of their queue (or at its end when those are taken). Gold queries least given so far go first.
    """
    held: Counter[int] = Counter()  # user -> assignments held before this call
    gold_held: Counter[int] = Counter()
    gold_load: Counter[int] = Counter()  # gold query -> annotators holding it
    for qid, members in holders.items():
        for uid in members:
            if qid in gold:
                gold_held[uid] += 1
                gold_load[qid] += 1
    new_by_user: dict[int, list[dict]] = {}
    for row in rows:
        new_by_user.setdefault(row["user_id"], []).append(row)
    out: list[dict] = []
    n_gold = 0
    for user in chosen:
        uid = user.id
        fresh = new_by_user.get(uid, [])
        normal = sum(1 for qid, members in holders.items() if uid in members and qid not in gold)
        held[uid] = normal - len(fresh) + gold_held[uid]
        owed = normal // (rate - 1) - gold_held[uid] if rate >= 2 else 0
        spare = sorted(
            (q for q in gold if uid not in holders.get(q, set())),
            key=lambda q: (gold_load[q], hashlib.sha256(f"{uid}:{q}".encode()).digest()),
        )
        sequence = list(fresh)
        for k, qid in enumerate(spare[: max(0, owed)]):
            g = gold_held[uid] + k
            slot = g * rate + _offset(uid, g, rate) - held[uid]
            slot = min(max(slot, 0), len(sequence))
            sequence.insert(slot, {"query_id": qid, "user_id": uid, "status": "pending"})
            holders.setdefault(qid, set()).add(uid)
            gold_load[qid] += 1
            n_gold += 1
        start = next_position.get(uid, -1) + 1
        for n, row in enumerate(sequence):
            row["position"] = start + n
        next_position[uid] = start + len(sequence) - 1
        out.extend(sequence)
    return out, n_gold


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
            .where(live_dataset())
            .group_by(Dataset.name, User.name, Assignment.status)
        ).all()
    table: dict[tuple[str, str], dict[str, int]] = {}
    for dataset, name, status, n in rows:
        table.setdefault((dataset, name), {})[status] = n
    return [
        QueueSize(d, n, sum(c.values()), c.get("done", 0), c.get("skipped", 0))
        for (d, n), c in sorted(table.items())
    ]
