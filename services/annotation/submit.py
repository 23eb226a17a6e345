"""Submit: everything an annotator gives for one query, stored in one transaction.

A submit is idempotent on its ``client_token``, so a retried submit (lost connection, double
click) is stored exactly once. Submitting a query again (after undo or from the history list)
replaces the answers; every changed judgment keeps its earlier value in ``judgment_history``, and
each submission keeps the state it replaced (``previous_state``), so nothing is ever lost. Busy or
restarting databases are retried, then reported as :class:`SaveFailed` so the page keeps the work
and retries.

An annotator may give an item's copies (its duplicate group, :mod:`services.duplicates`) the
label they gave the item (``QueryWork.copy_sources``): each copy is stored as its own judgment,
provenance ``duplicate`` with the item it copies, in the same transaction. A copy the annotator
labelled themselves keeps their label, and so does a labelled positive (it is judged as one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from db.enums import AssignmentStatus, Label, Provenance, RejectReason, RevisionKind, Role, Verdict
from db.models import (
    Assignment,
    Candidate,
    Item,
    Judgment,
    JudgmentHistory,
    Qrel,
    Query,
    QueryRevision,
    QueryVerdict,
    Submission,
    utcnow,
)
from db.session import Database
from services.annotation.drafts import discard_draft
from services.annotation.queue import next_in, own_assignment
from services.annotation.task import shuffle_seed
from services.core.auth import Actor, allow
from services.core.errors import SaveFailed, ValidationError
from services.duplicates.copies import copies_in
from services.formats.limits import MAX_QUERY_CHARS, ZERO_WIDTH
from services.ranking.generations import pooled_run

MAX_NOTE_CHARS = 2_000
SAVE_ATTEMPTS = 3


@dataclass(frozen=True)
class LabelInput:
    label: str
    provenance: str
    position: int | None = None
    search_text: str | None = None
    duplicate_of: int | None = None  # provenance duplicate: the judged item this one is a copy of


@dataclass(frozen=True)
class QueryWork:
    """Everything an annotator submits for one query."""

    labels: dict[int, LabelInput]
    verdict: str
    reason: str | None = None
    note: str = ""
    rewrite: str | None = None
    time_on_task_ms: int = 0
    client_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Judged items whose copies get the same label (each stored as its own judgment).
    copy_sources: frozenset[int] = frozenset()


@dataclass(frozen=True)
class SubmitResult:
    submission_id: int
    duplicate: bool  # the same client_token was stored before: nothing new was written
    next_assignment_id: int | None


def _validate(work: QueryWork) -> None:
    if work.verdict not in tuple(Verdict):
        raise ValidationError(f"choose a query verdict: {', '.join(tuple(Verdict))}")
    if work.verdict == Verdict.REJECT:
        if work.reason not in tuple(RejectReason):
            raise ValidationError(f"say why the query is rejected: {', '.join(tuple(RejectReason))}")
        if work.reason == "other" and not work.note.strip():
            raise ValidationError("a rejection for 'other' needs a note")
    if work.verdict == Verdict.REWRITE:
        text = (work.rewrite or "").strip()
        if not text.strip(ZERO_WIDTH):
            raise ValidationError("a rewrite needs the new query text")
        if len(text) > MAX_QUERY_CHARS:
            raise ValidationError(f"the rewritten query is limited to {MAX_QUERY_CHARS:,} characters")
    if len(work.note) > MAX_NOTE_CHARS:
        raise ValidationError(f"the note is limited to {MAX_NOTE_CHARS:,} characters")
    if not work.client_token or len(work.client_token) > 64:
        raise ValidationError("a submit needs a client token (1-64 characters)")
    for item_id, value in work.labels.items():
        if value.label not in tuple(Label):
            raise ValidationError(f"unknown label {value.label!r} for item {item_id}")
        if value.provenance not in tuple(Provenance):
            raise ValidationError(f"unknown provenance {value.provenance!r} for item {item_id}")
        if value.provenance == Provenance.SEARCH and not (value.search_text or "").strip():
            raise ValidationError("an item added from search needs the search text")
        if value.provenance == Provenance.DUPLICATE:
            raise ValidationError(
                "copies get their label from the item they copy (copy_sources), not one by one"
            )
    unjudged = sorted(set(work.copy_sources) - set(work.labels))
    if unjudged:
        raise ValidationError(
            f"item {unjudged[0]} is not judged: judge it before giving its copies its label"
        )


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


def _copy_labels(s: Session, work: QueryWork, positives: set[int]) -> dict[int, LabelInput]:
    """The label of each copy of ``work.copy_sources`` (their duplicate groups): the label its
    source was given. Items judged in ``work`` and labelled positives are left out (judged
    themselves), and so is a copy of two sources given different labels."""
    if not work.copy_sources:
        return {}
    proposed: dict[int, set[tuple[str, int]]] = {}
    for source, copies in copies_in(s, work.copy_sources).items():
        for item in copies:
            if item not in work.labels and item not in positives:
                proposed.setdefault(item, set()).add((work.labels[source].label, source))
    out = {}
    for item, options in sorted(proposed.items()):
        if len({label for label, _ in options}) == 1:
            label, source = min(options, key=lambda o: o[1])
            out[item] = LabelInput(label, Provenance.DUPLICATE, duplicate_of=source)
    return out


@allow(Role.ANNOTATOR)
def submit(db: Database, actor: Actor, assignment_id: int, work: QueryWork) -> SubmitResult:
    """Store every label and the verdict for one query in one transaction, then find the next.

    Raises:
        ValidationError: the work is incomplete (the message says what is missing).
        PermissionDenied: the assignment is someone else's.
    """
    _validate(work)
    for attempt in range(SAVE_ATTEMPTS):
        try:
            return _submit(db, actor, assignment_id, work)
        except IntegrityError:
            return _stored_before(db, actor, work)
        except OperationalError as e:
            # Busy or restarting database: the transaction rolled back whole; try again, and
            # then hand it back to the caller, which keeps the work and retries later.
            if attempt == SAVE_ATTEMPTS - 1:
                raise SaveFailed(
                    f"the database did not accept the submit ({e.orig}); nothing is lost, retry"
                ) from e
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _stored_before(db: Database, actor: Actor, work: QueryWork) -> SubmitResult:
    """A concurrent retry with the same client token won the race: it is stored once."""
    with db.read() as s:
        existing = s.scalar(select(Submission).where(Submission.client_token == work.client_token))
        if existing is None or existing.user_id != actor.id:
            raise SaveFailed("the submit clashed with another write; nothing is lost, retry")
        a = s.get(Assignment, existing.assignment_id)
        return SubmitResult(existing.id, True, next_in(s, actor, s.get(Query, a.query_id).dataset_id, None))


@dataclass(frozen=True)
class _Checked:
    """What a submit needs that annotation never changes (the query, its positives, the pool and
    the candidates shown), read and checked before the write transaction so it stays short."""

    query_id: int
    dataset_id: int
    sources: dict[int, Candidate]  # the visible candidates the work labels, by item
    positive_ids: frozenset[int] = frozenset()  # the query's labelled positives


def _check(db: Database, actor: Actor, assignment_id: int, work: QueryWork) -> _Checked:
    with db.read() as s:
        a = own_assignment(s, actor, assignment_id)
        query = s.get(Query, a.query_id)
        if work.verdict == Verdict.REWRITE and (work.rewrite or "").strip() == query.text.strip():
            raise ValidationError(
                "the rewrite is the same as the query: change the text, or accept the query"
            )
        positive_ids = set(s.scalars(select(Qrel.item_id).where(Qrel.query_id == query.id, Qrel.score > 0)))
        labelled = {i for i, v in work.labels.items() if v.provenance == Provenance.ORIGINAL}
        if labelled - positive_ids:
            raise ValidationError(
                "an item marked as an original positive is not one of this query's positives"
            )
        missing = positive_ids - labelled
        if missing and work.verdict != Verdict.REJECT:
            raise ValidationError(f"label every labelled positive ({len(missing)} left), or reject the query")
        added = {i for i, v in work.labels.items() if v.provenance != Provenance.ORIGINAL}
        if added:
            found = set(
                s.scalars(select(Item.id).where(Item.id.in_(added), Item.dataset_id == query.dataset_id))
            )
            if found != added:
                raise ValidationError("an added item is not in this dataset's pool")
        sources: dict[int, Candidate] = {}
        candidate_ids = [i for i, v in work.labels.items() if v.provenance == Provenance.CANDIDATE]
        if candidate_ids:  # the visible run's rows, read in one statement with the run
            sources = {
                c.item_id: c
                for c in s.scalars(
                    select(Candidate).where(
                        Candidate.run_id == pooled_run(query.dataset_id),
                        Candidate.query_id == query.id,
                        Candidate.item_id.in_(candidate_ids),
                    )
                )
            }
        return _Checked(query.id, query.dataset_id, sources, frozenset(positive_ids))


def _submit(db: Database, actor: Actor, assignment_id: int, work: QueryWork) -> SubmitResult:
    checked = _check(db, actor, assignment_id, work)
    submission_id, duplicate = _write(db, actor, assignment_id, work, checked)
    with db.read() as s:  # the next query, after the write (it reads only)
        return SubmitResult(submission_id, duplicate, next_in(s, actor, checked.dataset_id, None))


def _write(
    db: Database, actor: Actor, assignment_id: int, work: QueryWork, checked: _Checked
) -> tuple[int, bool]:
    """The submit's write transaction: the submission, judgments, verdict and assignment."""
    now = utcnow()
    with db.write() as s:
        existing = s.scalar(select(Submission).where(Submission.client_token == work.client_token))
        a = own_assignment(s, actor, assignment_id)
        query = s.get(Query, checked.query_id)
        if existing is not None:
            if existing.user_id != actor.id:
                raise ValidationError("client token already used; reload the page")
            return existing.id, True

        labels = {**_copy_labels(s, work, set(checked.positive_ids)), **work.labels}
        source_ext = dict(s.execute(select(Item.id, Item.ext_id).where(Item.id.in_(work.copy_sources))).all())
        snapshot = _snapshot(s, actor, query.id, a)
        submission = Submission(
            assignment_id=a.id,
            user_id=actor.id,
            query_id=query.id,
            client_token=work.client_token,
            time_on_task_ms=max(0, int(work.time_on_task_ms)),
            previous_state=snapshot,
            submitted_at=now,
        )
        s.add(submission)
        s.flush()

        seed = shuffle_seed(actor.id or 0, query.id)
        sources = checked.sources
        current = {
            j.item_id: j
            for j in s.scalars(
                select(Judgment).where(Judgment.user_id == actor.id, Judgment.query_id == query.id)
            )
        }
        for item_id, value in labels.items():
            detail: dict[str, Any] = {}
            if value.provenance == Provenance.CANDIDATE:
                c = sources.get(item_id)
                detail = (
                    {"run_id": c.run_id, "rank": c.rank, "score": c.score, "rankers": c.rankers} if c else {}
                )
            elif value.provenance == Provenance.SEARCH:
                detail = {"text": (value.search_text or "").strip()[:500]}
            elif value.provenance == Provenance.DUPLICATE:
                detail = {"of": value.duplicate_of, "of_ext": source_ext.get(value.duplicate_of)}
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
                item_id not in labels
                and j.provenance != Provenance.ORIGINAL
                and j.label != Label.NOT_RELEVANT
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
                _set_judgment(
                    s, j, {**values, "label": Label.NOT_RELEVANT, "submission_id": submission.id}, now
                )

        revision_id = None
        if work.verdict == Verdict.REWRITE:
            revision = QueryRevision(
                query_id=query.id,
                text=(work.rewrite or "").strip(),
                kind=RevisionKind.REWRITE,
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
            "verdict": work.verdict,
            "reason": work.reason if work.verdict == Verdict.REJECT else None,
            "note": work.note.strip(),
            "revision_id": revision_id,
            "submission_id": submission.id,
        }
        if verdict is None:
            s.add(QueryVerdict(user_id=actor.id, query_id=query.id, created_at=now, updated_at=now, **values))
        else:
            for key, value in values.items():
                setattr(verdict, key, value)
            verdict.updated_at = now
        a.status = AssignmentStatus.DONE
        a.done_at = now
        discard_draft(s, a.id)
        s.flush()
        return submission.id, False
