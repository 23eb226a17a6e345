"""Gold answers: setting, reading and removing the known answer of a query.

A gold answer is the expected verdict (``accept`` or ``reject``; a rewrite is an accepted query)
and the correct label of each item it names. Items a gold answer does not name keep their
original label. Every source of gold (:mod:`services.gold.sources`: the demo's planted truth, a
reviewer's adjudication, a gold file) ends in :func:`write_gold`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.enums import GoldOrigin, Label, RejectReason, Role, Verdict
from db.gold import GoldItem, GoldQuery
from db.models import Item, Query, utcnow
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_id_or_404, query_or_404

GOLD_VERDICTS = (Verdict.ACCEPT, Verdict.REJECT)
GOLD_LABELS = (Label.RELEVANT, Label.NOT_RELEVANT)


@dataclass(frozen=True)
class GoldAnswer:
    """The known answer of one query."""

    query_id: int
    verdict: str  # accept | reject
    reason: str | None
    origin: str  # planted | adjudication | imported
    labels: dict[int, str] = field(default_factory=dict)  # item id -> relevant | not_relevant
    note: str = ""

    @property
    def relevant(self) -> set[int]:
        return {i for i, label in self.labels.items() if label == Label.RELEVANT}

    @property
    def not_relevant(self) -> set[int]:
        return {i for i, label in self.labels.items() if label == Label.NOT_RELEVANT}


@dataclass(frozen=True)
class GoldRow:
    """One gold query of a dataset, for listing."""

    query_id: int
    query_ext_id: str
    text: str
    verdict: str
    origin: str
    n_relevant: int
    n_not_relevant: int


def gold_answers(s: Session, dataset_id: int) -> dict[int, GoldAnswer]:
    """Every gold answer of a dataset, by query id (one query per row read, items in one more)."""
    rows = s.execute(
        select(
            GoldQuery.id,
            GoldQuery.query_id,
            GoldQuery.verdict,
            GoldQuery.reason,
            GoldQuery.origin,
            GoldQuery.note,
        )
        .join(Query, Query.id == GoldQuery.query_id)
        .where(Query.dataset_id == dataset_id)
    ).all()
    labels: dict[int, dict[int, str]] = {r.id: {} for r in rows}
    if rows:
        for gold_id, item_id, label in s.execute(
            select(GoldItem.gold_id, GoldItem.item_id, GoldItem.label)
            .join(GoldQuery, GoldQuery.id == GoldItem.gold_id)
            .join(Query, Query.id == GoldQuery.query_id)
            .where(Query.dataset_id == dataset_id)
        ):
            labels[gold_id][item_id] = label
    return {
        r.query_id: GoldAnswer(r.query_id, r.verdict, r.reason, r.origin, labels[r.id], r.note or "")
        for r in rows
    }


def gold_query_ids(s: Session, dataset_id: int) -> set[int]:
    """The ids of a dataset's gold queries."""
    return set(
        s.scalars(
            select(GoldQuery.query_id)
            .join(Query, Query.id == GoldQuery.query_id)
            .where(Query.dataset_id == dataset_id)
        )
    )


def check_answer(verdict: str, reason: str | None, labels: dict[int, str]) -> None:
    """Refuse an answer the scoring could not use.

    Raises:
        ValidationError: a verdict other than accept/reject, an unknown reason, or an item label
            other than relevant / not relevant.
    """
    if verdict not in GOLD_VERDICTS:
        raise ValidationError(f"a gold verdict is accept or reject, not {verdict!r}")
    if reason is not None and reason not in tuple(RejectReason):
        raise ValidationError(
            f"unknown reject reason {reason!r}; use one of {', '.join(tuple(RejectReason))}"
        )
    for item_id, label in labels.items():
        if label not in GOLD_LABELS:
            raise ValidationError(f"a gold label is relevant or not_relevant, not {label!r} (item {item_id})")


def write_gold(s: Session, actor: Actor, query: Query, answer: GoldAnswer) -> None:
    """Store ``answer`` as the gold of ``query``, replacing any earlier one (in the caller's transaction)."""
    check_answer(answer.verdict, answer.reason, answer.labels)
    if answer.labels:
        found = set(
            s.scalars(select(Item.id).where(Item.id.in_(answer.labels), Item.dataset_id == query.dataset_id))
        )
        missing = sorted(set(answer.labels) - found)
        if missing:
            raise ValidationError(f"gold items {missing[:5]} are not in the pool of this query's dataset")
    s.execute(delete(GoldQuery).where(GoldQuery.query_id == query.id))
    gold = GoldQuery(
        query_id=query.id,
        verdict=answer.verdict,
        reason=answer.reason if answer.verdict == Verdict.REJECT else None,
        origin=answer.origin,
        note=answer.note.strip()[:2000],
        created_by_id=actor.id,
        created_at=utcnow(),
    )
    gold.items = [GoldItem(item_id=i, label=label) for i, label in sorted(answer.labels.items())]
    s.add(gold)
    s.flush()


@allow(Role.ADMIN)
def set_gold(
    db: Database,
    query_id: int,
    *,
    verdict: str,
    labels: dict[int, str],
    reason: str | None = None,
    note: str = "",
    origin: str = GoldOrigin.IMPORTED,
    actor: Actor = SYSTEM,
) -> GoldAnswer:
    """Mark a query as gold with its answer (replacing an earlier one)."""
    if origin not in tuple(GoldOrigin):
        raise ValidationError(f"unknown gold origin {origin!r}")
    answer = GoldAnswer(query_id, verdict, reason, origin, dict(labels), note)
    with db.write() as s:
        write_gold(s, actor, query_or_404(s, query_id), answer)
    return answer


@allow(Role.ADMIN)
def remove_gold(db: Database, query_id: int, *, actor: Actor = SYSTEM) -> bool:
    """Make a gold query a normal one again; False when it was not gold.

    Its assignments stay in the annotators' queues and its work is kept: from now on that work
    counts toward the export's consensus like any other.
    """
    with db.write() as s:
        query_or_404(s, query_id)
        return bool(s.execute(delete(GoldQuery).where(GoldQuery.query_id == query_id)).rowcount)


@allow(Role.ADMIN, Role.REVIEWER)
def list_gold(db: Database, dataset: str, *, actor: Actor = SYSTEM) -> list[GoldRow]:
    """The gold queries of a dataset, by query id."""
    with db.read() as s:
        ds_id = dataset_id_or_404(s, dataset)
        answers = gold_answers(s, ds_id)
        queries = dict(
            (qid, (ext, text))
            for qid, ext, text in s.execute(
                select(Query.id, Query.ext_id, Query.text).where(Query.id.in_(answers))
            )
        )
    return [
        GoldRow(
            qid,
            queries[qid][0],
            queries[qid][1],
            a.verdict,
            a.origin,
            len(a.relevant),
            len(a.not_relevant),
        )
        for qid, a in sorted(answers.items(), key=lambda kv: queries[kv[0]][0])
    ]
