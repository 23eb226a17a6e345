"""Review: the queries annotators disagree on, as cases a reviewer settles.

A query is in the review queue when, among the annotators who finished it, the verdicts differ
(``verdict``), a labelled positive got different votes (``positive``), an added positive is not
everyone's (``added``), or someone was unsure or rejected it as ambiguous (``flagged``). Who voted
what is computed once, in :mod:`services.agreement.votes`, for review, agreement and export alike:
an annotator who rejected the query still voted on the items they labelled, so every item label
that differs between annotators is a dispute, whatever the verdicts.

Reviewers never see who is who: the annotators of a case are the letters A, B, C, … in the order
of their user ids, stable within the case. Only an admin may reveal the names
(:func:`services.review.reveal.reveal_names`), and every reveal is logged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from db.enums import RevisionKind, Role, Shortcut
from db.models import Dataset, Item, Query, QueryAdjudication, QueryRevision, QueryVerdict
from db.session import Database
from services.agreement.votes import KINDS, QueryVotes, load_votes
from services.core.auth import Actor, allow
from services.core.cards import Card, card_of
from services.core.config import load_settings
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404, query_or_404
from services.core.media import MediaStore
from services.core.memo import StampedCache
from services.core.work_stamp import work_stamp
from services.review.adjudication import latest_adjudications
from services.triage.views import triage_by_query

REVIEWER = "reviewer"  # who wrote a text the reviewer edited earlier


def letter(n: int) -> str:
    """The pseudonym of the ``n``-th annotator of a case (0-based): A … Z, then AA, AB, …"""
    out = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        out = chr(ord("A") + rest) + out
    return out


def pseudonyms(votes: QueryVotes) -> dict[int, str]:
    """Each finished annotator's letter in this case (by user id: stable while the case exists)."""
    return {uid: letter(n) for n, uid in enumerate(votes.annotators)}


@dataclass(frozen=True)
class ReviewEntry:
    query_id: int
    ext_id: str
    text: str
    category: str | None
    kinds: tuple[str, ...]
    n_annotators: int
    n_items: int  # items in dispute
    resolved: bool
    suspicion: float | None = None  # from the triage computed after ranking (services.triage)
    shortcut: str | None = None  # which single modality alone finds every labelled positive


@dataclass(frozen=True)
class AnnotatorVote:
    annotator: str  # the annotator's letter in this case
    label: str | None  # None: no vote (see services.agreement.votes)
    provenance: str | None  # how they found it, when they labelled it
    verdict: str  # their verdict on the query


@dataclass(frozen=True)
class DisputedItem:
    card: Card
    original_positive: bool
    kinds: tuple[str, ...]  # why it is disputed: positive, added, flagged
    votes: list[AnnotatorVote]  # one per annotator of the case, in letter order
    decision: str | None  # the current adjudication, if any


@dataclass(frozen=True)
class RewriteOption:
    revision_id: int
    text: str
    by: str  # an annotator's letter, or "reviewer"


@dataclass(frozen=True)
class AnnotatorVerdict:
    annotator: str
    verdict: str
    reason: str | None
    note: str


@dataclass(frozen=True)
class ItemCounts:
    """The judged items of a case, from the same votes that decide what is in dispute."""

    judged: int  # items any finished annotator labelled
    disputed: int
    agreed: int  # labelled by two or more, all alike
    single: int  # labelled by one annotator only (nobody else voted on it)

    def sentence(self) -> str:
        """E.g. "5 judged items: 3 in dispute, 1 labelled alike by everyone who labelled it, 1
        labelled by one annotator only"."""
        if not self.judged:
            return "No item was judged."
        parts = [f"{self.disputed} in dispute"]
        if self.agreed:
            parts.append(f"{self.agreed} labelled alike by everyone who labelled {_it(self.agreed)}")
        if self.single:
            parts.append(f"{self.single} labelled by one annotator only")
        s = "" if self.judged == 1 else "s"
        return f"{self.judged} judged item{s}: " + ", ".join(parts) + "."


def _it(n: int) -> str:
    return "it" if n == 1 else "them"


def item_counts(votes: QueryVotes) -> ItemCounts:
    judged = votes.judged_items()
    disputed = votes.disputed_items()
    sizes = [len(votes.votes(i)) for i in judged - disputed]
    return ItemCounts(len(judged), len(disputed), sum(n >= 2 for n in sizes), sum(n < 2 for n in sizes))


@dataclass(frozen=True)
class ReviewCase:
    query_id: int
    dataset: str
    ext_id: str
    original_text: str
    category: str | None
    language: str | None
    kinds: tuple[str, ...]
    annotators: tuple[str, ...]  # letters, in order
    verdicts: list[AnnotatorVerdict]
    rewrites: list[RewriteOption]
    items: list[DisputedItem]  # every item in dispute: labelled positives first
    decision: str | None  # the current query-level adjudication
    decision_reason: str | None
    decision_revision_id: int | None
    counts: ItemCounts


# The disputes of a dataset (every query's kinds, unfiltered), per database and dataset, kept
# until its votes change (a submit): the review page asks on every rerun (services.core.memo).
_disputes: StampedCache = StampedCache(max_slots=16)  # a 100k dataset's: a few MB


def _all_disputes(db: Database, ds_id: int) -> list[ReviewEntry]:
    """Every query in dispute, in queue order, ``resolved`` left False (it is read live)."""
    with db.read() as s:
        queries = s.execute(
            select(Query.id, Query.ext_id, Query.text, Query.category)
            .where(Query.dataset_id == ds_id)
            .order_by(Query.position, Query.id)
        ).all()
        votes = load_votes(s, [q.id for q in queries])
    entries = []
    for q in queries:
        if q.id not in votes:
            continue
        kinds = votes[q.id].kinds()
        if kinds:
            entries.append(
                ReviewEntry(
                    q.id,
                    q.ext_id,
                    q.text,
                    q.category,
                    tuple(k for k in KINDS if k in kinds),
                    len(votes[q.id].verdicts),
                    len(votes[q.id].disputed_items()),
                    False,
                    None,
                    None,
                )
            )
    return entries


@allow(Role.REVIEWER)
def review_queue(
    db: Database,
    actor: Actor,
    dataset: str,
    *,
    category: str | None = None,
    kind: str | None = None,
    shortcut: str | None = None,
) -> list[ReviewEntry]:
    """Queries in dispute, in queue order; ``resolved`` once the query itself is adjudicated.

    ``shortcut`` keeps the queries with that modality-shortcut flag (text, image, both, neither).
    Who disagrees on what is computed once per change of the dataset's votes and kept; which
    cases are settled, and their triage, are read on every call (a reviewer's save shows at once).
    """
    if kind is not None and kind not in KINDS:
        raise ValidationError(f"unknown disagreement type {kind!r}; choose one of {', '.join(KINDS)}")
    if shortcut is not None and shortcut not in tuple(Shortcut):
        raise ValidationError(
            f"unknown modality shortcut {shortcut!r}; choose one of {', '.join(s.value for s in Shortcut)}"
        )
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        stamp = work_stamp(s, ds.id)
        resolved = set(
            s.scalars(
                select(QueryAdjudication.query_id)
                .join(Query, Query.id == QueryAdjudication.query_id)
                .where(Query.dataset_id == ds.id)
                .distinct()
            )
        )
        ds_id = ds.id
    entries = _disputes.get((db.url, ds_id), stamp.votes if stamp else None, lambda: _all_disputes(db, ds_id))
    entries = [
        e for e in entries if (not category or e.category == category) and (kind is None or kind in e.kinds)
    ]
    with db.read() as s:
        triage = triage_by_query(s, [e.query_id for e in entries])
    out = []
    for e in entries:
        found = triage.get(e.query_id)
        if shortcut is not None and (found is None or found.shortcut != shortcut):
            continue
        out.append(
            dataclasses.replace(
                e,
                resolved=e.query_id in resolved,
                suspicion=found.suspicion if found else None,
                shortcut=found.shortcut if found else None,
            )
        )
    return out


def next_case(entries: Sequence[ReviewEntry], current: int | None, *, step: int = 1) -> int | None:
    """The case after (``step`` 1) or before (-1) ``current`` in queue order, wrapping around;
    with ``step`` 0, the first unsettled case after ``current`` (None when every case is settled)."""
    if not entries:
        return None
    ids = [e.query_id for e in entries]
    at = ids.index(current) if current in ids else -1
    if step:
        return ids[(at + step) % len(ids)] if at >= 0 or step > 0 else ids[-1]
    for n in range(1, len(ids) + 1):
        entry = entries[(at + n) % len(ids)]
        if not entry.resolved:
            return entry.query_id
    return None


@allow(Role.REVIEWER)
def load_case(db: Database, actor: Actor, query_id: int) -> ReviewCase:
    """One disputed query with every annotator's votes on each item in dispute, anonymised."""
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
        who = pseudonyms(votes)
        items = {it.id: it for it in s.scalars(select(Item).where(Item.id.in_(disputed)))} if disputed else {}
        adjudications = latest_adjudications(s, query_id)
        disputed_items = []
        for item_id in sorted(disputed, key=lambda i: (i not in votes.positives, items[i].ext_id)):
            marks = votes.marks.get(item_id, {})
            counted = votes.votes(item_id)
            disputed_items.append(
                DisputedItem(
                    card_of(items[item_id], store),
                    item_id in votes.positives,
                    tuple(k for k in KINDS if k in votes.item_kinds(item_id)),
                    [
                        AnnotatorVote(
                            who[uid],
                            counted.get(uid),
                            marks[uid].provenance if uid in marks else None,
                            votes.verdicts[uid],
                        )
                        for uid in votes.annotators
                    ],
                    adjudications.get(item_id, (None, None))[0],
                )
            )
        proposed = {v.revision_id: who[uid] for uid, v in verdicts.items() if v.revision_id and uid in who}
        rewrites = [
            RewriteOption(r.id, r.text, REVIEWER if r.kind == RevisionKind.ADJUDICATED else proposed[r.id])
            for r in s.scalars(
                select(QueryRevision)
                .where(QueryRevision.query_id == query_id, QueryRevision.kind != RevisionKind.ORIGINAL)
                .order_by(QueryRevision.id)
            )
            if r.kind == RevisionKind.ADJUDICATED or r.id in proposed
        ]
        decision = s.scalars(
            select(QueryAdjudication)
            .where(QueryAdjudication.query_id == query_id)
            .order_by(QueryAdjudication.id.desc())
            .limit(1)
        ).first()
        return ReviewCase(
            query.id,
            ds.name,
            query.ext_id,
            query.text,
            query.category,
            query.language,
            tuple(k for k in KINDS if k in votes.kinds()),
            tuple(who[uid] for uid in votes.annotators),
            [
                AnnotatorVerdict(who[uid], verdicts[uid].verdict, verdicts[uid].reason, verdicts[uid].note)
                for uid in votes.annotators
            ],
            rewrites,
            disputed_items,
            decision.verdict if decision else None,
            decision.reason if decision else None,
            decision.revision_id if decision else None,
            item_counts(votes),
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
