"""Review: the queries annotators disagree on, and the reviewer's adjudications.

A query is in the review queue when, among the annotators who submitted it, the verdicts differ
(``verdict``), a labelled positive got different labels (``positive``), an item was added as a
positive by some but not all (``added``), or someone was unsure or rejected it as ambiguous
(``flagged``). A reviewer decides each disputed item and the query; decisions are stored as
:class:`db.models.Adjudication` rows (the newest per query and item wins) and the export's
consensus honours them. Annotators appear as "Annotator 1, 2, …" unless names are asked for.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import Label, RejectReason, Role, Verdict
from db.models import (
    Adjudication,
    Dataset,
    Item,
    Judgment,
    Qrel,
    Query,
    QueryRevision,
    QueryVerdict,
    User,
    utcnow,
)
from db.session import Database
from services.core.auth import Actor, allow
from services.core.cards import Card, card_of
from services.core.config import load_settings
from services.core.errors import NotFoundError, ValidationError
from services.core.lookups import dataset_or_404
from services.core.media import MediaStore
from services.formats.limits import MAX_QUERY_CHARS

KINDS = ("verdict", "positive", "added", "flagged")


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


@dataclass
class _Votes:
    verdicts: dict[int, QueryVerdict] = field(default_factory=dict)
    labels: dict[int, dict[int, Judgment]] = field(default_factory=dict)  # item -> user -> judgment


def _collect(s: Session, query_ids: list[int]) -> dict[int, _Votes]:
    votes: dict[int, _Votes] = defaultdict(_Votes)
    if not query_ids:
        return votes
    for v in s.scalars(select(QueryVerdict).where(QueryVerdict.query_id.in_(query_ids))):
        votes[v.query_id].verdicts[v.user_id] = v
    for j in s.scalars(select(Judgment).where(Judgment.query_id.in_(query_ids))):
        votes[j.query_id].labels.setdefault(j.item_id, {})[j.user_id] = j
    return votes


def _disputes(votes: _Votes, positives: set[int]) -> tuple[set[str], set[int]]:
    """The kinds of disagreement on one query, and the items in dispute."""
    annotators = set(votes.verdicts)
    kinds: set[str] = set()
    items: set[int] = set()
    if len(annotators) >= 2 and len({v.verdict for v in votes.verdicts.values()}) > 1:
        kinds.add("verdict")
    if any(v.verdict == Verdict.REJECT and v.reason == "ambiguous" for v in votes.verdicts.values()):
        kinds.add("flagged")
    for item_id, by_user in votes.labels.items():
        labels = {uid: j.label for uid, j in by_user.items() if uid in annotators}
        if any(label == Label.UNSURE for label in labels.values()):
            kinds.add("flagged")
            items.add(item_id)
        if len(annotators) < 2:
            continue
        if item_id in positives:
            # Rejecting the query leaves positives unlabelled: that is no vote on the item.
            voters = {uid for uid, v in votes.verdicts.items() if v.verdict != Verdict.REJECT}
            given = {labels.get(uid) for uid in voters}
            if len(voters) >= 2 and len(given) > 1:
                kinds.add("positive")
                items.add(item_id)
        else:
            relevant = {uid for uid, label in labels.items() if label == Label.RELEVANT}
            if relevant and relevant != annotators:
                kinds.add("added")
                items.add(item_id)
    return kinds, items


def _positives(s: Session, query_ids: list[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    if query_ids:
        for qid, iid in s.execute(
            select(Qrel.query_id, Qrel.item_id).where(Qrel.query_id.in_(query_ids), Qrel.score > 0)
        ):
            out[qid].add(iid)
    return out


def _adjudicated_queries(s: Session, query_ids: list[int]) -> set[int]:
    if not query_ids:
        return set()
    rows = s.scalars(
        select(Adjudication.query_id).where(
            Adjudication.query_id.in_(query_ids), Adjudication.item_id.is_(None)
        )
    )
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
        votes = _collect(s, ids)
        positives = _positives(s, ids)
        resolved = _adjudicated_queries(s, ids)
        entries = []
        for q in queries:
            if q.id not in votes:
                continue
            kinds, _ = _disputes(votes[q.id], positives.get(q.id, set()))
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
    """One disputed query with every annotator's decisions on the items in dispute."""
    store = MediaStore(load_settings().data_dir)
    with db.read() as s:
        query = s.get(Query, query_id)
        if query is None:
            raise NotFoundError(f"no query {query_id}")
        ds = s.get(Dataset, query.dataset_id)
        votes = _collect(s, [query_id])[query_id]
        positives = _positives(s, [query_id]).get(query_id, set())
        kinds, disputed = _disputes(votes, positives)
        order = sorted(votes.verdicts)  # stable pseudonyms: by user id
        names = dict(s.execute(select(User.id, User.name).where(User.id.in_(order))).all()) if order else {}

        def who(uid: int | None) -> str:
            if uid is None:
                return "original"
            if show_names:
                return names.get(uid, str(uid))
            return f"Annotator {order.index(uid) + 1}" if uid in order else "another annotator"

        items = {it.id: it for it in s.scalars(select(Item).where(Item.id.in_(disputed)))} if disputed else {}
        adjudications = _latest_adjudications(s, query_id)
        disputed_items = [
            DisputedItem(
                card_of(items[item_id], store),
                item_id in positives,
                [
                    AnnotatorVote(
                        who(uid),
                        votes.labels.get(item_id, {}).get(uid).label
                        if uid in votes.labels.get(item_id, {})
                        else None,
                        votes.labels.get(item_id, {}).get(uid).provenance
                        if uid in votes.labels.get(item_id, {})
                        else None,
                    )
                    for uid in order
                ],
                adjudications.get(item_id, (None, None))[0],
            )
            for item_id in sorted(disputed, key=lambda i: (i not in positives, i))
        ]
        rewrites = [
            RewriteOption(r.id, r.text, who(r.author_id) if r.kind != "adjudicated" else "reviewer")
            for r in s.scalars(
                select(QueryRevision)
                .where(QueryRevision.query_id == query_id, QueryRevision.kind != "original")
                .order_by(QueryRevision.id)
            )
            if r.kind == "adjudicated" or any(v.revision_id == r.id for v in votes.verdicts.values())
        ]
        all_items = set(votes.labels)
        decision = adjudications.get(None, (None, None))
        return ReviewCase(
            query.id,
            ds.name,
            query.ext_id,
            query.text,
            query.category,
            query.language,
            tuple(k for k in KINDS if k in kinds),
            [
                (who(uid), votes.verdicts[uid].verdict, votes.verdicts[uid].reason, votes.verdicts[uid].note)
                for uid in order
            ],
            rewrites,
            disputed_items,
            decision[0],
            decision[1],
            len(all_items - disputed),
        )


def _latest_adjudications(s: Session, query_id: int) -> dict[int | None, tuple[str, int | None]]:
    latest: dict[int | None, tuple[str, int | None]] = {}
    for a in s.scalars(
        select(Adjudication).where(Adjudication.query_id == query_id).order_by(Adjudication.id)
    ):
        latest[a.item_id] = (a.decision, a.revision_id)
    return latest


@allow(Role.REVIEWER)
def adjudicate(
    db: Database,
    actor: Actor,
    query_id: int,
    *,
    items: dict[int, str],
    verdict: str,
    reason: str | None = None,
    revision_id: int | None = None,
    rewrite_text: str | None = None,
    note: str = "",
) -> None:
    """Store the reviewer's decisions on a query and its disputed items, in one transaction.

    ``verdict`` is the query's final verdict; for ``rewrite`` the reviewer picks an annotator's
    rewrite (``revision_id``) or edits one (``rewrite_text``, stored as a new revision).
    """
    if verdict not in tuple(Verdict):
        raise ValidationError(f"choose the query's verdict: {', '.join(tuple(Verdict))}")
    if verdict == Verdict.REJECT and reason not in tuple(RejectReason):
        raise ValidationError(f"say why the query is rejected: {', '.join(tuple(RejectReason))}")
    for item_id, label in items.items():
        if label not in (Label.RELEVANT, Label.NOT_RELEVANT):
            raise ValidationError(f"decide item {item_id} as relevant or not relevant")
    now = utcnow()
    with db.write() as s:
        query = s.get(Query, query_id)
        if query is None:
            raise NotFoundError(f"no query {query_id}")
        if items:
            found = set(
                s.scalars(select(Item.id).where(Item.id.in_(items), Item.dataset_id == query.dataset_id))
            )
            if found != set(items):
                raise ValidationError("a decided item is not in this query's dataset")
        if verdict == Verdict.REWRITE:
            text = (rewrite_text or "").strip()
            if text:
                if len(text) > MAX_QUERY_CHARS:
                    raise ValidationError(f"the rewritten query is limited to {MAX_QUERY_CHARS:,} characters")
                revision = QueryRevision(
                    query_id=query_id, text=text, kind="adjudicated", author_id=actor.id, created_at=now
                )
                s.add(revision)
                s.flush()
                revision_id = revision.id
            elif revision_id is None or s.get(QueryRevision, revision_id) is None:
                raise ValidationError("choose one of the rewrites or write the query's new text")
            elif s.get(QueryRevision, revision_id).query_id != query_id:
                raise ValidationError("that rewrite belongs to another query")
        else:
            revision_id = None
        for item_id, label in sorted(items.items()):
            s.add(
                Adjudication(
                    query_id=query_id, item_id=item_id, reviewer_id=actor.id, decision=label, created_at=now
                )
            )
        s.add(
            Adjudication(
                query_id=query_id,
                item_id=None,
                reviewer_id=actor.id,
                decision=verdict,
                reason=reason if verdict == Verdict.REJECT else None,
                revision_id=revision_id,
                note=note.strip()[:2000],
                created_at=now,
            )
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
