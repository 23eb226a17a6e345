"""Review: the queries annotators disagree on, as cases a reviewer settles.

A query is in the review queue when, among the annotators who finished it, the verdicts differ
(``verdict``), a labelled positive got different votes (``positive``), an added positive is not
everyone's (``added``), or someone was unsure or rejected it as ambiguous (``flagged``). Who voted
what is computed once, in :mod:`services.agreement.votes`, for review, agreement and export alike.
Annotators appear as "Annotator 1, 2, …" unless names are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import RevisionKind, Role
from db.models import Dataset, Item, Query, QueryAdjudication, QueryRevision, QueryVerdict, User
from db.session import Database
from services.agreement.votes import KINDS, load_votes
from services.core.auth import Actor, allow
from services.core.cards import Card, card_of
from services.core.config import load_settings
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404, query_or_404
from services.core.media import MediaStore
from services.review.adjudication import latest_adjudications


@dataclass(frozen=True)
class ReviewEntry:
    query_id: int
    ext_id: str
    text: str
    category: str | None
    kinds: tuple[str, ...]
    n_annotators: int
    resolved: bool


@dataclass(frozen=True)
class AnnotatorVote:
    annotator: str  # "Annotator 1" unless names are shown
    label: str | None  # None: this annotator did not judge the item
    provenance: str | None


@dataclass(frozen=True)
class DisputedItem:
    card: Card
    original_positive: bool
    votes: list[AnnotatorVote]
    decision: str | None  # the current adjudication, if any


@dataclass(frozen=True)
class RewriteOption:
    revision_id: int
    text: str
    by: str


@dataclass(frozen=True)
class ReviewCase:
    query_id: int
    dataset: str
    ext_id: str
    original_text: str
    category: str | None
    language: str | None
    kinds: tuple[str, ...]
    verdicts: list[tuple[str, str, str | None, str]]  # (annotator, verdict, reason, note)
    rewrites: list[RewriteOption]
    items: list[DisputedItem]
    decision: str | None  # the current query-level adjudication
    decision_revision_id: int | None
    agreed_items: int  # items every annotator labelled the same (not shown)


def _adjudicated_queries(s: Session, query_ids: list[int]) -> set[int]:
    if not query_ids:
        return set()
    rows = s.scalars(select(QueryAdjudication.query_id).where(QueryAdjudication.query_id.in_(query_ids)))
    return set(rows)


@allow(Role.REVIEWER)
def review_queue(
    db: Database, actor: Actor, dataset: str, *, category: str | None = None, kind: str | None = None
) -> list[ReviewEntry]:
    """Queries in dispute, in queue order; ``resolved`` once the query itself is adjudicated."""
    if kind is not None and kind not in KINDS:
        raise ValidationError(f"unknown disagreement type {kind!r}; choose one of {', '.join(KINDS)}")
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        stmt = select(Query).where(Query.dataset_id == ds.id).order_by(Query.position, Query.id)
        if category:
            stmt = stmt.where(Query.category == category)
        queries = s.scalars(stmt).all()
        ids = [q.id for q in queries]
        votes = load_votes(s, ids)
        resolved = _adjudicated_queries(s, ids)
        entries = []
        for q in queries:
            if q.id not in votes:
                continue
            kinds = votes[q.id].kinds()
            if not kinds or (kind is not None and kind not in kinds):
                continue
            entries.append(
                ReviewEntry(
                    q.id,
                    q.ext_id,
                    q.text,
                    q.category,
                    tuple(k for k in KINDS if k in kinds),
                    len(votes[q.id].verdicts),
                    q.id in resolved,
                )
            )
        return entries


@allow(Role.REVIEWER)
def load_case(db: Database, actor: Actor, query_id: int, *, show_names: bool = False) -> ReviewCase:
    """One disputed query with every annotator's votes on the items in dispute."""
    store = MediaStore(load_settings().data_dir)
    with db.read() as s:
        query = query_or_404(s, query_id)
        ds = s.get(Dataset, query.dataset_id)
        votes = load_votes(s, [query_id]).get(query_id)
        if votes is None:
            raise ValidationError(f"query {query.ext_id} has no finished annotation to review")
        verdicts = {
            v.user_id: v for v in s.scalars(select(QueryVerdict).where(QueryVerdict.query_id == query_id))
        }
        disputed = votes.disputed_items()
        order = votes.annotators  # stable pseudonyms: by user id
        names = dict(s.execute(select(User.id, User.name).where(User.id.in_(order))).all()) if order else {}

        def who(uid: int | None) -> str:
            if uid is None:
                return "original"
            if show_names:
                return names.get(uid, str(uid))
            return f"Annotator {order.index(uid) + 1}" if uid in order else "another annotator"

        items = {it.id: it for it in s.scalars(select(Item).where(Item.id.in_(disputed)))} if disputed else {}
        adjudications = latest_adjudications(s, query_id)
        disputed_items = []
        for item_id in sorted(disputed, key=lambda i: (i not in votes.positives, i)):
            marks = votes.marks.get(item_id, {})
            disputed_items.append(
                DisputedItem(
                    card_of(items[item_id], store),
                    item_id in votes.positives,
                    [
                        AnnotatorVote(
                            who(uid),
                            marks[uid].label if uid in marks else None,
                            marks[uid].provenance if uid in marks else None,
                        )
                        for uid in order
                    ],
                    adjudications.get(item_id, (None, None))[0],
                )
            )
        rewrites = [
            RewriteOption(
                r.id, r.text, who(r.author_id) if r.kind != RevisionKind.ADJUDICATED else "reviewer"
            )
            for r in s.scalars(
                select(QueryRevision)
                .where(QueryRevision.query_id == query_id, QueryRevision.kind != RevisionKind.ORIGINAL)
                .order_by(QueryRevision.id)
            )
            if r.kind == RevisionKind.ADJUDICATED or any(v.revision_id == r.id for v in verdicts.values())
        ]
        decision = adjudications.get(None, (None, None))
        return ReviewCase(
            query.id,
            ds.name,
            query.ext_id,
            query.text,
            query.category,
            query.language,
            tuple(k for k in KINDS if k in votes.kinds()),
            [(who(uid), verdicts[uid].verdict, verdicts[uid].reason, verdicts[uid].note) for uid in order],
            rewrites,
            disputed_items,
            decision[0],
            decision[1],
            len(votes.judged_items() - disputed),
        )


@dataclass(frozen=True)
class ReviewProgress:
    in_dispute: int
    resolved: int


@allow(Role.REVIEWER)
def review_progress(db: Database, actor: Actor, dataset: str) -> ReviewProgress:
    entries = review_queue(db, actor, dataset)
    return ReviewProgress(len(entries), sum(1 for e in entries if e.resolved))


@allow(Role.REVIEWER)
def categories(db: Database, actor: Actor, dataset: str) -> list[str]:
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        rows = s.scalars(
            select(Query.category).where(Query.dataset_id == ds.id, Query.category.is_not(None)).distinct()
        )
        return sorted(rows)
