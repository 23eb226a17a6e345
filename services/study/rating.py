"""What a rater does in a blind study: the list of their studies, their queue, one trial, an answer.

Blinding, enforced here rather than by the pages:

- What a rater receives (:class:`QualityTrial`, :class:`PreferenceTrial`) holds display texts,
  images and labels only: no query id, source, system name, or other raters' answers. The
  unblinded content lives in ``StudyTrial.payload`` and ``StudyAssignment.mapping`` and is read
  only by admin services after closing. A rater names an assignment by its id, which is checked
  against the rater; assignments are inserted in a shuffled order, so an id says nothing about
  the order its queries are shown in.
- Closing locks the study: :func:`submit_answer` raises :class:`StudyClosed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.enums import StudyKind, StudyStatus
from db.models import Dataset, Item, Query
from db.session import Database
from db.studies import Study, StudyAssignment, StudyResponse, StudyTrial
from services.core.auth import EVERYONE, Actor, allow
from services.core.cards import Card, RefView, card_of
from services.core.config import load_settings
from services.core.errors import PermissionDenied, ValidationError
from services.core.lookups import live_dataset, study_or_404
from services.core.media import MediaStore
from services.study.design import TIE, A, B, option_number
from services.study.rubric import SCALE, Criterion, rubric_of

MAX_COMMENT_CHARS = 2_000


class StudyClosed(ValidationError):
    """The study is closed: its answers are locked."""


@dataclass(frozen=True)
class RaterStudy:
    """A study in a rater's list."""

    name: str
    kind: str
    status: str
    answered: int
    total: int


@dataclass(frozen=True)
class QueueEntry:
    assignment_id: int
    number: int  # 1-based place in the rater's queue
    answered: bool


@dataclass(frozen=True)
class ShownQuery:
    """A query as a rater sees it: a label, its text and its reference images."""

    label: str
    text: str
    refs: list[RefView]


@dataclass(frozen=True)
class QualityTrial:
    """One query-quality trial on a rater's screen: nothing that says where a query came from."""

    assignment_id: int
    study: str
    number: int
    total: int
    answered: int
    is_open: bool
    targets: list[Card]
    queries: list[ShownQuery]  # "A", then "B"
    rubric: tuple[Criterion, ...]
    my_scores: dict[str, dict[str, int]]
    my_preference: str | None
    my_comment: str


@dataclass(frozen=True)
class ShownResult:
    label: str  # "Option 1", ...
    card: Card


@dataclass(frozen=True)
class PreferenceTrial:
    """One system-preference trial: a query and anonymous, shuffled results."""

    assignment_id: int
    study: str
    number: int
    total: int
    answered: int
    is_open: bool
    query_text: str
    query_refs: list[RefView]
    options: list[ShownResult]
    my_preference: str | None
    my_comment: str


@dataclass(frozen=True)
class Answer:
    """What a rater submits: scores per criterion and label (query quality), and a preference."""

    scores: dict[str, dict[str, int]] = field(default_factory=dict)
    preference: str | None = None  # "A" | "B" | "tie", or an option label
    comment: str = ""


def _with_account(actor: Actor) -> Actor:
    if actor.id is None:
        raise PermissionDenied("rating needs a user account; log in to the app")
    return actor


@allow(*EVERYONE)
def my_studies(db: Database, actor: Actor) -> list[RaterStudy]:
    """Studies in which the user has trials to rate, open ones first."""
    _with_account(actor)
    with db.read() as s:
        rows = s.execute(
            select(
                Study.name,
                Study.kind,
                Study.status,
                func.count(StudyAssignment.id),
                func.count(StudyResponse.id),
            )
            .select_from(StudyAssignment)
            .join(StudyTrial, StudyTrial.id == StudyAssignment.trial_id)
            .join(Study, Study.id == StudyTrial.study_id)
            .join(Dataset, Dataset.id == Study.dataset_id)
            .outerjoin(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
            .where(StudyAssignment.rater_id == actor.id, live_dataset())
            .group_by(Study.id, Study.name, Study.kind, Study.status)
        ).all()
    studies = [RaterStudy(n, k, st, answered, total) for n, k, st, total, answered in rows]
    return sorted(studies, key=lambda x: (x.status != StudyStatus.OPEN, x.name))


@allow(*EVERYONE)
def my_queue(db: Database, actor: Actor, study: str) -> list[QueueEntry]:
    """The user's assignments in a study, in their queue order."""
    _with_account(actor)
    with db.read() as s:
        return _queue(s, actor, study_or_404(s, study).id)


def _queue(s: Session, actor: Actor, study_id: int) -> list[QueueEntry]:
    rows = s.execute(
        select(StudyAssignment.id, StudyResponse.id)
        .join(StudyTrial, StudyTrial.id == StudyAssignment.trial_id)
        .outerjoin(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
        .where(StudyTrial.study_id == study_id, StudyAssignment.rater_id == actor.id)
        .order_by(StudyAssignment.position, StudyAssignment.id)
    ).all()
    return [QueueEntry(aid, n, rid is not None) for n, (aid, rid) in enumerate(rows, start=1)]


@allow(*EVERYONE)
def next_assignment(db: Database, actor: Actor, study: str) -> int | None:
    """The first unanswered assignment in the user's queue, or None when all are answered."""
    return next((e.assignment_id for e in my_queue(db, actor, study) if not e.answered), None)


def _own(s: Session, actor: Actor, assignment_id: int) -> tuple[StudyAssignment, StudyTrial, Study]:
    a = s.get(StudyAssignment, assignment_id)
    if a is None or a.rater_id != actor.id:
        # One message for both: a rater learns nothing about other raters' assignments.
        raise PermissionDenied("this item is not in your study queue")
    trial = s.get(StudyTrial, a.trial_id)
    return a, trial, s.get(Study, trial.study_id)


def _refs(s: Session, query_id: int, store: MediaStore) -> list[RefView]:
    query = s.get(Query, query_id)
    if query is None:
        return []
    refs = []
    for ref in query.refs:
        if ref.item_id is not None:
            refs.append(RefView(card_of(s.get(Item, ref.item_id), store), None))
        else:
            refs.append(RefView(None, str(store.thumb_path(ref.image_sha256)) if ref.image_sha256 else None))
    return refs


@allow(*EVERYONE)
def load_trial(db: Database, actor: Actor, assignment_id: int) -> QualityTrial | PreferenceTrial:
    """One trial of the user's queue, blinded: display texts, images and labels only."""
    _with_account(actor)
    store = MediaStore(load_settings().data_dir)
    with db.read() as s:
        a, trial, study = _own(s, actor, assignment_id)
        response = s.scalar(select(StudyResponse).where(StudyResponse.assignment_id == a.id))
        queue = _queue(s, actor, study.id)
        number = next(e.number for e in queue if e.assignment_id == a.id)
        answered = sum(e.answered for e in queue)
        common = {
            "assignment_id": a.id,
            "study": study.name,
            "number": number,
            "total": len(queue),
            "answered": answered,
            "is_open": study.status == StudyStatus.OPEN,
            "my_preference": response.preference if response else None,
            "my_comment": response.comment if response else "",
        }
        payload = trial.payload
        if study.kind == StudyKind.QUERY_QUALITY:
            targets = [card_of(s.get(Item, iid), store) for iid in payload["targets"]]
            shown = []
            for label in (A, B):
                query = payload["queries"][a.mapping[label]]
                shown.append(ShownQuery(label, query["text"], _refs(s, query["id"], store)))
            return QualityTrial(
                **common,
                targets=targets,
                queries=shown,
                rubric=rubric_of(study.config),
                my_scores={k: dict(v) for k, v in (response.scores if response else {}).items()},
            )
        options = [
            ShownResult(label, card_of(s.get(Item, option["item_id"]), store))
            for label, option in sorted(a.mapping.items(), key=lambda kv: option_number(kv[0]))
        ]
        query = payload["query"]
        return PreferenceTrial(
            **common, query_text=query["text"], query_refs=_refs(s, query["id"], store), options=options
        )


def _check_answer(study: Study, mapping: Mapping[str, Any], answer: Answer) -> dict[str, dict[str, int]]:
    if len(answer.comment or "") > MAX_COMMENT_CHARS:
        raise ValidationError(f"the comment is limited to {MAX_COMMENT_CHARS:,} characters")
    if study.kind == StudyKind.SYSTEM_PREFERENCE:
        if answer.preference not in mapping:
            raise ValidationError("choose the best result")
        return {}
    scores: dict[str, dict[str, int]] = {}
    for criterion in rubric_of(study.config):
        given = (answer.scores or {}).get(criterion.name) or {}
        row = {}
        for label in (A, B):
            value = given.get(label)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value not in SCALE:
                raise ValidationError(f"score query {label} on {criterion.name!r} from 1 to 5")
            row[label] = int(value)
        scores[criterion.name] = row
    if answer.preference not in (A, B, TIE):
        raise ValidationError("say which query is better: A, B or tie")
    return scores


@allow(*EVERYONE)
def submit_answer(db: Database, actor: Actor, assignment_id: int, answer: Answer) -> int | None:
    """Store the user's answer for one trial (a second submit replaces it while the study is open).

    Returns:
        The next unanswered assignment of the user in this study, or None.

    Raises:
        StudyClosed: the study is closed.
        ValidationError: a score or the preference is missing or out of range.
        PermissionDenied: the assignment is not the user's.
    """
    _with_account(actor)
    for attempt in range(2):
        try:
            return _submit(db, actor, assignment_id, answer)
        except IntegrityError:
            # A concurrent first submit of the same assignment won; this one now updates it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _submit(db: Database, actor: Actor, assignment_id: int, answer: Answer) -> int | None:
    with db.write() as s:
        a, trial, _ = _own(s, actor, assignment_id)
        # Shared lock, re-read: a concurrent close waits for this answer, or this answer sees it.
        study = s.scalar(
            select(Study)
            .where(Study.id == trial.study_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
        if study.status != StudyStatus.OPEN:
            raise StudyClosed(
                f"the study {study.name!r} is closed; answers can no longer be given or changed"
            )
        scores = _check_answer(study, a.mapping, answer)
        response = s.scalar(select(StudyResponse).where(StudyResponse.assignment_id == a.id))
        values = {
            "scores": scores,
            "preference": answer.preference,
            "mapping": dict(a.mapping),
            "comment": (answer.comment or "").strip(),
        }
        if response is None:
            s.add(StudyResponse(assignment_id=a.id, **values))
        else:
            for key, value in values.items():
                setattr(response, key, value)
        s.flush()
        return next((e.assignment_id for e in _queue(s, actor, study.id) if not e.answered), None)
