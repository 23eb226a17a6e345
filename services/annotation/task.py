"""The annotator's work: the queue, one query on screen, submit, undo, skip.

An annotator only ever sees their own decisions (blind to each other until review). A submit
stores everything for one query in one transaction and is idempotent on its ``client_token``, so
a retried submit (lost connection, double click) is stored exactly once; the state before it is
kept on the submission so undo can restore it exactly.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from db.enums import Label, Provenance, RejectReason, Role, Verdict
from db.models import (
    Assignment,
    Candidate,
    Dataset,
    Item,
    Judgment,
    JudgmentHistory,
    Qrel,
    Query,
    QueryRevision,
    QueryVerdict,
    RankerRun,
    Submission,
    utcnow,
)
from db.session import Database
from services.core.auth import Actor, allow
from services.core.cards import Card, RefView, card_of
from services.core.config import load_settings
from services.core.errors import NotFoundError, PermissionDenied, SaveFailed, ValidationError
from services.core.lookups import dataset_or_404
from services.core.media import MediaStore
from services.formats.limits import MAX_QUERY_CHARS, ZERO_WIDTH

PENDING, SKIPPED, DONE = "pending", "skipped", "done"
MAX_NOTE_CHARS = 2_000
SAVE_ATTEMPTS = 3


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class CandidateCard:
    card: Card
    position: int  # where it is shown (0-based), recorded with the judgment
    rank: int  # pooled rank (only shown when the dataset shows scores)
    score: float
    rankers: dict[str, Any]


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    skipped: int


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


@dataclass(frozen=True)
class LabelInput:
    label: str
    provenance: str
    position: int | None = None
    search_text: str | None = None


@dataclass(frozen=True)
class Decision:
    """Everything an annotator submits for one query."""

    labels: dict[int, LabelInput]
    verdict: str
    reason: str | None = None
    note: str = ""
    rewrite: str | None = None
    time_on_task_ms: int = 0
    client_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmitResult:
    submission_id: int
    duplicate: bool  # the same client_token was stored before: nothing new was written
    next_assignment_id: int | None


# --------------------------------------------------------------------------- helpers


def shuffle_seed(user_id: int, query_id: int) -> int:
    """A stable per-annotator, per-query seed for the candidate order (position-bias control)."""
    digest = hashlib.sha256(f"{user_id}:{query_id}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def _store() -> MediaStore:
    return MediaStore(load_settings().data_dir)


def pooled_run_id(s: Session, dataset_id: int) -> int | None:
    """The newest pooled ranking of a dataset (the candidates annotators see), if any."""
    return s.scalar(
        select(RankerRun.id)
        .where(RankerRun.dataset_id == dataset_id, RankerRun.kind == "pooled")
        .order_by(RankerRun.id.desc())
        .limit(1)
    )


def _own_assignment(s: Session, actor: Actor, assignment_id: int) -> Assignment:
    a = s.get(Assignment, assignment_id)
    if a is None:
        raise NotFoundError(f"no assignment {assignment_id}")
    if a.user_id != actor.id:
        raise PermissionDenied("this query is in another annotator's queue")
    return a


# --------------------------------------------------------------------------- queue


@allow(Role.ANNOTATOR)
def my_datasets(db: Database, actor: Actor) -> list[str]:
    """Datasets in which the annotator has assignments."""
    with db.read() as s:
        rows = s.execute(
            select(Dataset.name)
            .join(Query, Query.dataset_id == Dataset.id)
            .join(Assignment, Assignment.query_id == Query.id)
            .where(Assignment.user_id == actor.id)
            .group_by(Dataset.name)
            .order_by(Dataset.name)
        )
        return [name for (name,) in rows]


@allow(Role.ANNOTATOR)
def progress(db: Database, actor: Actor, dataset: str) -> Progress:
    with db.read() as s:
        return _progress(s, actor, dataset_or_404(s, dataset).id)


def _progress(s: Session, actor: Actor, dataset_id: int) -> Progress:
    rows = dict(
        s.execute(
            select(Assignment.status, func.count())
            .join(Query)
            .where(Assignment.user_id == actor.id, Query.dataset_id == dataset_id)
            .group_by(Assignment.status)
        ).all()
    )
    return Progress(rows.get(DONE, 0), sum(rows.values()), rows.get(SKIPPED, 0))


@allow(Role.ANNOTATOR)
def next_assignment(db: Database, actor: Actor, dataset: str, *, exclude: int | None = None) -> int | None:
    """The next query to do: pending ones in queue order, then skipped ones (they return later)."""
    with db.read() as s:
        return _next(s, actor, dataset_or_404(s, dataset).id, exclude)


def _next(s: Session, actor: Actor, dataset_id: int, exclude: int | None) -> int | None:
    base = (
        select(Assignment.id)
        .join(Query)
        .where(Assignment.user_id == actor.id, Query.dataset_id == dataset_id)
        .order_by(Assignment.skips, Assignment.position)
        .limit(1)
    )
    if exclude is not None:
        base = base.where(Assignment.id != exclude)
    for status in (PENDING, SKIPPED):
        found = s.scalar(base.where(Assignment.status == status))
        if found is not None:
            return found
    return None


@allow(Role.ANNOTATOR)
def previous_assignment(db: Database, actor: Actor, dataset: str, *, before: int | None) -> int | None:
    """The annotator's most recently submitted query (to go back to it), other than ``before``."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        stmt = (
            select(Assignment.id)
            .join(Query)
            .where(Assignment.user_id == actor.id, Query.dataset_id == ds.id, Assignment.status == DONE)
            .order_by(Assignment.done_at.desc(), Assignment.id.desc())
            .limit(1)
        )
        if before is not None:
            stmt = stmt.where(Assignment.id != before)
        return s.scalar(stmt)


@allow(Role.ANNOTATOR)
def skip(db: Database, actor: Actor, assignment_id: int) -> None:
    """Put a query back at the end of the queue."""
    with db.write() as s:
        a = _own_assignment(s, actor, assignment_id)
        if a.status != DONE:
            a.status = SKIPPED
            a.skips += 1


# --------------------------------------------------------------------------- one query


@allow(Role.ANNOTATOR)
def load_task(db: Database, actor: Actor, assignment_id: int) -> Task:
    """Everything the workbench shows for one assignment; nothing of other annotators."""
    store = _store()
    with db.read() as s:
        a = _own_assignment(s, actor, assignment_id)
        query = s.get(Query, a.query_id)
        ds = s.get(Dataset, query.dataset_id)
        settings = ds.settings or {}
        k = int(settings.get("k", 100))
        show_scores = bool(settings.get("show_scores", False))

        positives = s.scalars(
            select(Item)
            .join(Qrel, Qrel.item_id == Item.id)
            .where(Qrel.query_id == query.id, Qrel.score > 0)
            .order_by(Item.id)
        ).all()
        positive_ids = {p.id for p in positives}

        candidates: list[CandidateCard] = []
        run_id = pooled_run_id(s, ds.id)
        seed = shuffle_seed(actor.id or 0, query.id)
        if run_id is not None:
            rows = s.execute(
                select(Candidate, Item)
                .join(Item, Item.id == Candidate.item_id)
                .where(Candidate.run_id == run_id, Candidate.query_id == query.id, Candidate.rank <= k)
                .order_by(Candidate.rank)
            ).all()
            rows = [(c, it) for c, it in rows if it.id not in positive_ids]
            if not show_scores:
                random.Random(seed).shuffle(rows)
            candidates = [
                CandidateCard(card_of(it, store), n, c.rank, c.score, dict(c.sources or {}))
                for n, (c, it) in enumerate(rows)
            ]

        refs = []
        for ref in query.refs:
            if ref.item_id is not None:
                refs.append(RefView(card_of(s.get(Item, ref.item_id), store), None))
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
                QueryRevision.kind == "rewrite",
                QueryRevision.author_id == actor.id,
            )
            .order_by(QueryRevision.id)
        ).all()
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
            my_added={j.item_id: j.provenance for j in judgments if j.provenance != Provenance.ORIGINAL},
            my_verdict=verdict.verdict if verdict else None,
            my_reason=verdict.reason if verdict else None,
            my_note=verdict.note if verdict else "",
            status=a.status,
            progress=_progress(s, actor, ds.id),
        )


# --------------------------------------------------------------------------- submit and undo


def _validate(decision: Decision) -> None:
    if decision.verdict not in tuple(Verdict):
        raise ValidationError(f"choose a query verdict: {', '.join(tuple(Verdict))}")
    if decision.verdict == Verdict.REJECT:
        if decision.reason not in tuple(RejectReason):
            raise ValidationError(f"say why the query is rejected: {', '.join(tuple(RejectReason))}")
        if decision.reason == "other" and not decision.note.strip():
            raise ValidationError("a rejection for 'other' needs a note")
    if decision.verdict == Verdict.REWRITE:
        text = (decision.rewrite or "").strip()
        if not text.strip(ZERO_WIDTH):
            raise ValidationError("a rewrite needs the new query text")
        if len(text) > MAX_QUERY_CHARS:
            raise ValidationError(f"the rewritten query is limited to {MAX_QUERY_CHARS:,} characters")
    if len(decision.note) > MAX_NOTE_CHARS:
        raise ValidationError(f"the note is limited to {MAX_NOTE_CHARS:,} characters")
    if not decision.client_token or len(decision.client_token) > 64:
        raise ValidationError("a submit needs a client token (1-64 characters)")
    for item_id, value in decision.labels.items():
        if value.label not in tuple(Label):
            raise ValidationError(f"unknown label {value.label!r} for item {item_id}")
        if value.provenance not in tuple(Provenance):
            raise ValidationError(f"unknown provenance {value.provenance!r} for item {item_id}")
        if value.provenance == Provenance.SEARCH and not (value.search_text or "").strip():
            raise ValidationError("an item added from search needs the search text")


def _snapshot(s: Session, actor: Actor, query_id: int, assignment: Assignment) -> dict[str, Any]:
    judgments = s.scalars(
        select(Judgment).where(Judgment.user_id == actor.id, Judgment.query_id == query_id)
    ).all()
    verdict = s.scalar(
        select(QueryVerdict).where(QueryVerdict.user_id == actor.id, QueryVerdict.query_id == query_id)
    )
    return {
        "assignment_status": assignment.status,
        "done_at": assignment.done_at.isoformat() if assignment.done_at else None,
        "judgments": [
            {
                "item_id": j.item_id,
                "label": j.label,
                "provenance": j.provenance,
                "provenance_detail": j.provenance_detail,
                "position_shown": j.position_shown,
                "shuffle_seed": j.shuffle_seed,
            }
            for j in judgments
        ],
        "verdict": None
        if verdict is None
        else {
            "verdict": verdict.verdict,
            "reason": verdict.reason,
            "note": verdict.note,
            "revision_id": verdict.revision_id,
        },
    }


def _set_judgment(s: Session, existing: Judgment | None, values: dict[str, Any], now: datetime) -> None:
    if existing is None:
        s.add(Judgment(**values, created_at=now, updated_at=now))
        return
    same = all(getattr(existing, k) == v for k, v in values.items() if k not in ("submission_id",))
    if same:
        return
    s.add(
        JudgmentHistory(
            judgment_id=existing.id,
            label=existing.label,
            provenance=existing.provenance,
            provenance_detail=existing.provenance_detail,
            position_shown=existing.position_shown,
            changed_at=now,
        )
    )
    for key, value in values.items():
        setattr(existing, key, value)
    existing.updated_at = now


@allow(Role.ANNOTATOR)
def submit(db: Database, actor: Actor, assignment_id: int, decision: Decision) -> SubmitResult:
    """Store every label and the verdict for one query in one transaction, then find the next.

    Raises:
        ValidationError: the decision is incomplete (the message says what is missing).
        PermissionDenied: the assignment is someone else's.
    """
    _validate(decision)
    for attempt in range(SAVE_ATTEMPTS):
        try:
            return _submit(db, actor, assignment_id, decision)
        except IntegrityError:
            return _stored_before(db, actor, decision)
        except OperationalError as e:
            # Busy or restarting database: the transaction rolled back whole; try again, and
            # then hand it back to the caller, which keeps the decision and retries later.
            if attempt == SAVE_ATTEMPTS - 1:
                raise SaveFailed(
                    f"the database did not accept the submit ({e.orig}); nothing is lost, retry"
                ) from e
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _stored_before(db: Database, actor: Actor, decision: Decision) -> SubmitResult:
    """A concurrent retry with the same client token won the race: it is stored once."""
    with db.read() as s:
        existing = s.scalar(select(Submission).where(Submission.client_token == decision.client_token))
        if existing is None or existing.user_id != actor.id:
            raise SaveFailed("the submit clashed with another write; nothing is lost, retry")
        a = s.get(Assignment, existing.assignment_id)
        return SubmitResult(existing.id, True, _next(s, actor, s.get(Query, a.query_id).dataset_id, None))


def _submit(db: Database, actor: Actor, assignment_id: int, decision: Decision) -> SubmitResult:
    now = utcnow()
    with db.write() as s:
        existing = s.scalar(select(Submission).where(Submission.client_token == decision.client_token))
        a = _own_assignment(s, actor, assignment_id)
        query = s.get(Query, a.query_id)
        if existing is not None:
            if existing.user_id != actor.id:
                raise ValidationError("client token already used; reload the page")
            return SubmitResult(existing.id, True, _next(s, actor, query.dataset_id, None))

        positive_ids = set(s.scalars(select(Qrel.item_id).where(Qrel.query_id == query.id, Qrel.score > 0)))
        labelled = {i for i, v in decision.labels.items() if v.provenance == Provenance.ORIGINAL}
        if labelled - positive_ids:
            raise ValidationError(
                "an item marked as an original positive is not one of this query's positives"
            )
        missing = positive_ids - labelled
        if missing and decision.verdict != Verdict.REJECT:
            raise ValidationError(f"label every labelled positive ({len(missing)} left), or reject the query")
        added = {i for i, v in decision.labels.items() if v.provenance != Provenance.ORIGINAL}
        if added:
            found = set(
                s.scalars(select(Item.id).where(Item.id.in_(added), Item.dataset_id == query.dataset_id))
            )
            if found != added:
                raise ValidationError("an added item is not in this dataset's pool")

        snapshot = _snapshot(s, actor, query.id, a)
        submission = Submission(
            assignment_id=a.id,
            user_id=actor.id,
            query_id=query.id,
            client_token=decision.client_token,
            time_on_task_ms=max(0, int(decision.time_on_task_ms)),
            previous_state=snapshot,
            submitted_at=now,
        )
        s.add(submission)
        s.flush()

        seed = shuffle_seed(actor.id or 0, query.id)
        run_id = pooled_run_id(s, query.dataset_id)
        sources: dict[int, Candidate] = {}
        candidate_ids = [i for i, v in decision.labels.items() if v.provenance == Provenance.CANDIDATE]
        if candidate_ids and run_id is not None:
            sources = {
                c.item_id: c
                for c in s.scalars(
                    select(Candidate).where(
                        Candidate.run_id == run_id,
                        Candidate.query_id == query.id,
                        Candidate.item_id.in_(candidate_ids),
                    )
                )
            }
        current = {
            j.item_id: j
            for j in s.scalars(
                select(Judgment).where(Judgment.user_id == actor.id, Judgment.query_id == query.id)
            )
        }
        for item_id, value in decision.labels.items():
            detail: dict[str, Any] = {}
            if value.provenance == Provenance.CANDIDATE:
                c = sources.get(item_id)
                detail = (
                    {"run_id": run_id, "rank": c.rank, "score": c.score, "rankers": c.sources} if c else {}
                )
            elif value.provenance == Provenance.SEARCH:
                detail = {"text": (value.search_text or "").strip()[:500]}
            _set_judgment(
                s,
                current.get(item_id),
                {
                    "user_id": actor.id,
                    "query_id": query.id,
                    "item_id": item_id,
                    "label": value.label,
                    "provenance": value.provenance,
                    "provenance_detail": detail,
                    "position_shown": value.position,
                    "shuffle_seed": seed if value.provenance == Provenance.CANDIDATE else None,
                    "submission_id": submission.id,
                },
                now,
            )
        # An item added earlier and no longer marked is now judged not relevant (history kept).
        for item_id, j in current.items():
            if (
                item_id not in decision.labels
                and j.provenance != Provenance.ORIGINAL
                and j.label != "not_relevant"
            ):
                values = {
                    c: getattr(j, c)
                    for c in (
                        "user_id",
                        "query_id",
                        "item_id",
                        "provenance",
                        "provenance_detail",
                        "position_shown",
                        "shuffle_seed",
                    )
                }
                _set_judgment(s, j, {**values, "label": "not_relevant", "submission_id": submission.id}, now)

        revision_id = None
        if decision.verdict == Verdict.REWRITE:
            revision = QueryRevision(
                query_id=query.id,
                text=(decision.rewrite or "").strip(),
                kind="rewrite",
                author_id=actor.id,
                created_at=now,
            )
            s.add(revision)
            s.flush()
            revision_id = revision.id
        verdict = s.scalar(
            select(QueryVerdict).where(QueryVerdict.user_id == actor.id, QueryVerdict.query_id == query.id)
        )
        values = {
            "verdict": decision.verdict,
            "reason": decision.reason if decision.verdict == Verdict.REJECT else None,
            "note": decision.note.strip(),
            "revision_id": revision_id,
            "submission_id": submission.id,
        }
        if verdict is None:
            s.add(QueryVerdict(user_id=actor.id, query_id=query.id, created_at=now, updated_at=now, **values))
        else:
            for key, value in values.items():
                setattr(verdict, key, value)
            verdict.updated_at = now
        a.status = DONE
        a.done_at = now
        s.flush()
        return SubmitResult(submission.id, False, _next(s, actor, query.dataset_id, None))


@allow(Role.ANNOTATOR)
def undo_last(db: Database, actor: Actor, dataset: str) -> int | None:
    """Undo the annotator's last submission in ``dataset``; return its assignment (to reopen).

    The judgments and verdict are restored to what they were before it; rewrites stay in the
    query's revision history (nothing written is ever deleted), marked unused by the verdict.
    """
    now = utcnow()
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        submission = s.scalar(
            select(Submission)
            .join(Query, Query.id == Submission.query_id)
            .where(Submission.user_id == actor.id, Submission.undone_at.is_(None), Query.dataset_id == ds.id)
            .order_by(Submission.id.desc())
            .limit(1)
            .with_for_update()
        )
        if submission is None:
            return None
        state = submission.previous_state or {}
        before = {j["item_id"]: j for j in state.get("judgments", [])}
        current = {
            j.item_id: j
            for j in s.scalars(
                select(Judgment).where(Judgment.user_id == actor.id, Judgment.query_id == submission.query_id)
            )
        }
        for item_id, j in current.items():
            if item_id not in before:
                s.execute(delete(JudgmentHistory).where(JudgmentHistory.judgment_id == j.id))
                s.delete(j)
        for item_id, old in before.items():
            values = {"user_id": actor.id, "query_id": submission.query_id, "submission_id": None, **old}
            _set_judgment(s, current.get(item_id), values, now)
        verdict = s.scalar(
            select(QueryVerdict).where(
                QueryVerdict.user_id == actor.id, QueryVerdict.query_id == submission.query_id
            )
        )
        old_verdict = state.get("verdict")
        if old_verdict is None and verdict is not None:
            s.delete(verdict)
        elif old_verdict is not None:
            if verdict is None:
                verdict = QueryVerdict(user_id=actor.id, query_id=submission.query_id, created_at=now)
                s.add(verdict)
            for key, value in old_verdict.items():
                setattr(verdict, key, value)
            verdict.submission_id = None
            verdict.updated_at = now
        a = s.get(Assignment, submission.assignment_id)
        a.status = state.get("assignment_status", PENDING)
        a.done_at = None if a.status != DONE else a.done_at
        submission.undone_at = now
        return a.id


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
