"""One query on the annotator's screen: what the workbench shows, and nothing of other annotators.

The candidate grid comes from the dataset's newest pooled run, minus the labelled positives,
shuffled per annotator and query (a stable seed, recorded with each judgment) unless the dataset
shows scores and ranks.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from db.enums import Provenance, RevisionKind, Role, Verdict
from db.models import (
    Candidate,
    Dataset,
    Draft,
    Item,
    Judgment,
    Qrel,
    Query,
    QueryRef,
    QueryRevision,
    QueryVerdict,
)
from db.session import Database
from services.annotation.queue import Progress, own_assignment, progress_in
from services.core.auth import Actor, allow
from services.core.cards import Card, RefView, card_of
from services.core.config import load_settings
from services.core.lookups import dataset_or_404
from services.core.media import MediaStore
from services.datasets.settings import DatasetSettings
from services.duplicates.copies import copies_in
from services.ranking.generations import pooled_run
from services.triage.views import hint_for


@dataclass(frozen=True)
class CandidateCard:
    card: Card
    position: int  # where it is shown (0-based), recorded with the judgment
    rank: int  # pooled rank (only shown when the dataset shows scores)
    score: float
    rankers: dict[str, Any]


@dataclass(frozen=True)
class Task:
    """One query on the annotator's screen, with only this annotator's own decisions."""

    assignment_id: int
    dataset: str
    query_id: int
    query_ext_id: str
    text: str  # current text for this annotator: their own rewrite, else the original
    original_text: str
    my_rewrites: list[tuple[str, str]]  # (time, text), oldest first
    category: str | None
    language: str | None
    refs: list[RefView]
    guidelines: str
    positives: list[Card]
    candidates: list[CandidateCard]
    k: int
    show_scores: bool
    shuffle_seed: int
    my_labels: dict[int, str]
    my_added: dict[int, str]  # items this annotator added (candidate/search) -> provenance
    my_verdict: str | None
    my_reason: str | None
    my_note: str
    status: str
    progress: Progress
    # Items this annotator added that are not in the candidate grid (found by search), and the
    # search text each was found with: a reopened query shows them with its other answers.
    added_elsewhere: list[Card]
    search_texts: dict[int, str]
    draft: dict[str, Any] | None  # unsaved work kept on the server (services/annotation/drafts.py)
    draft_seq: int
    # The query's suspicion (services/triage), only when this user may see it: the dataset shows
    # hints to annotators, or the user is an admin or reviewer. None otherwise.
    hint: float | None = None
    # Copies in the pool (services/duplicates) of the items on screen: item -> the other members
    # of its duplicate group; and the items whose label this annotator gave their copies.
    copies: dict[int, list[int]] = field(default_factory=dict)
    copy_sources: list[int] = field(default_factory=list)


def shuffle_seed(user_id: int, query_id: int) -> int:
    """A stable per-annotator, per-query seed for the candidate order (position-bias control)."""
    digest = hashlib.sha256(f"{user_id}:{query_id}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def _store() -> MediaStore:
    return MediaStore(load_settings().data_dir)


@allow(Role.ANNOTATOR)
def load_task(db: Database, actor: Actor, assignment_id: int) -> Task:
    """Everything the workbench shows for one assignment; nothing of other annotators."""
    store = _store()
    with db.read() as s:
        a = own_assignment(s, actor, assignment_id)
        query = s.get(Query, a.query_id)
        ds = s.get(Dataset, query.dataset_id)
        settings = DatasetSettings.from_stored(ds.settings)
        k, show_scores = settings.k, settings.show_scores

        positives = s.scalars(
            select(Item)
            .join(Qrel, Qrel.item_id == Item.id)
            .where(Qrel.query_id == query.id, Qrel.score > 0)
            .order_by(Item.id)
        ).all()
        positive_ids = {p.id for p in positives}

        seed = shuffle_seed(actor.id or 0, query.id)
        # One statement finds the visible run and reads its rows: a re-rank's switch cannot tear them.
        rows = s.execute(
            select(Candidate, Item)
            .join(Item, Item.id == Candidate.item_id)
            .where(Candidate.run_id == pooled_run(ds.id), Candidate.query_id == query.id, Candidate.rank <= k)
            .order_by(Candidate.rank)
        ).all()
        rows = [(c, it) for c, it in rows if it.id not in positive_ids]
        if not show_scores:
            random.Random(seed).shuffle(rows)
        candidates = [
            CandidateCard(card_of(it, store), n, c.rank, c.score, dict(c.rankers or {}))
            for n, (c, it) in enumerate(rows)
        ]

        refs = []
        for ref in s.scalars(
            select(QueryRef)
            .where(QueryRef.query_id == query.id)
            .order_by(QueryRef.position)
            .options(selectinload(QueryRef.item))
        ):
            if ref.item is not None:
                refs.append(RefView(card_of(ref.item, store), None))
            else:
                path = str(store.thumb_path(ref.image_sha256)) if ref.image_sha256 else None
                refs.append(RefView(None, path))

        judgments = s.scalars(
            select(Judgment).where(Judgment.user_id == actor.id, Judgment.query_id == query.id)
        ).all()
        verdict = s.scalar(
            select(QueryVerdict).where(QueryVerdict.user_id == actor.id, QueryVerdict.query_id == query.id)
        )
        rewrites = s.execute(
            select(QueryRevision.created_at, QueryRevision.text)
            .where(
                QueryRevision.query_id == query.id,
                QueryRevision.kind == RevisionKind.REWRITE,
                QueryRevision.author_id == actor.id,
            )
            .order_by(QueryRevision.id)
        ).all()
        shown = {c.card.item_id for c in candidates} | positive_ids
        own = [j for j in judgments if j.provenance not in (Provenance.ORIGINAL, Provenance.DUPLICATE)]
        elsewhere = [j.item_id for j in own if j.item_id not in shown]
        added_elsewhere = [
            card_of(it, store)
            for it in s.scalars(select(Item).where(Item.id.in_(elsewhere)).order_by(Item.id))
        ]
        draft = s.scalar(select(Draft).where(Draft.assignment_id == a.id))
        text = query.text
        if verdict is not None and verdict.verdict == Verdict.REWRITE and verdict.revision_id is not None:
            text = s.get(QueryRevision, verdict.revision_id).text

        return Task(
            assignment_id=a.id,
            dataset=ds.name,
            query_id=query.id,
            query_ext_id=query.ext_id,
            text=text,
            original_text=query.text,
            my_rewrites=[(t.strftime("%Y-%m-%d %H:%M"), txt) for t, txt in rewrites],
            category=query.category,
            language=query.language,
            refs=refs,
            guidelines=ds.guidelines or "",
            positives=[card_of(p, store) for p in positives],
            candidates=candidates,
            k=k,
            show_scores=show_scores,
            shuffle_seed=seed,
            my_labels={j.item_id: j.label for j in judgments},
            my_added={j.item_id: j.provenance for j in own},
            my_verdict=verdict.verdict if verdict else None,
            my_reason=verdict.reason if verdict else None,
            my_note=verdict.note if verdict else "",
            status=a.status,
            progress=progress_in(s, actor, ds.id),
            added_elsewhere=added_elsewhere,
            search_texts={
                j.item_id: str((j.provenance_detail or {}).get("text", ""))
                for j in judgments
                if j.provenance == Provenance.SEARCH
            },
            draft=dict(draft.work) if draft is not None else None,
            draft_seq=draft.seq if draft is not None else 0,
            hint=hint_for(s, actor, query.id, settings),
            copies=copies_in(s, [*shown, *elsewhere]),
            copy_sources=_copy_sources(judgments),
        )


def _copy_sources(judgments: Sequence[Judgment]) -> list[int]:
    """Items whose label went to their copies: a copy judged ``duplicate`` still has its label."""
    label = {j.item_id: j.label for j in judgments}
    sources = set()
    for j in judgments:
        source = (j.provenance_detail or {}).get("of") if j.provenance == Provenance.DUPLICATE else None
        if source is not None and label.get(int(source)) == j.label:
            sources.add(int(source))
    return sorted(sources)


@allow(Role.ANNOTATOR, Role.REVIEWER)
def cards(db: Database, actor: Actor, dataset: str, item_ids: list[int]) -> list[Card]:
    """Cards for items of ``dataset``, in the order given (search results)."""
    store = _store()
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        rows = {
            it.id: it for it in s.scalars(select(Item).where(Item.id.in_(item_ids), Item.dataset_id == ds.id))
        }
        return [card_of(rows[i], store) for i in item_ids if i in rows]
