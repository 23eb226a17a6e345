"""Drafts: unsaved work on a query, kept on the server while the annotator works.

The page sends its work (debounced, about a second after the last change) with its own sequence
number; a draft survives a reload, a dropped connection and a server restart, and is discarded
when the query is submitted. A late write of an older draft (lower ``seq``) never replaces a
newer one. The work is checked for shape and size here; its content is checked on submit.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.enums import AssignmentStatus, Role
from db.models import Assignment, Draft, Query, utcnow
from db.session import Database
from services.annotation.queue import own_assignment
from services.core.auth import Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404

MAX_DRAFT_BYTES = 200_000  # a draft carries labels, a note and a rewrite: far below this
_KEYS = {
    "labels",
    "added",
    "copies",
    "verdict",
    "reason",
    "note",
    "rewrite",
}  # copies: items whose label their copies take


def _checked(work: Any) -> dict[str, Any]:
    if not isinstance(work, dict) or not set(work) <= _KEYS:
        raise ValidationError(f"a draft is an object with some of {', '.join(sorted(_KEYS))}")
    if len(json.dumps(work)) > MAX_DRAFT_BYTES:
        raise ValidationError(f"a draft is limited to {MAX_DRAFT_BYTES:,} bytes")
    return work


@allow(Role.ANNOTATOR)
def save_draft(db: Database, actor: Actor, assignment_id: int, work: dict[str, Any], seq: int) -> bool:
    """Keep ``work`` as the draft of one of ``actor``'s assignments; False when a newer one is kept."""
    work = _checked(work)
    with db.write() as s:
        own_assignment(s, actor, assignment_id)
        draft = s.scalar(select(Draft).where(Draft.assignment_id == assignment_id).with_for_update())
        if draft is None:
            s.add(Draft(assignment_id=assignment_id, work=work, seq=seq, updated_at=utcnow()))
            return True
        if seq <= draft.seq:
            return False
        draft.work, draft.seq, draft.updated_at = work, seq, utcnow()
        return True


def discard_draft(s: Session, assignment_id: int) -> None:
    """Drop the draft of an assignment, inside the caller's transaction (the submit that saves it)."""
    s.execute(delete(Draft).where(Draft.assignment_id == assignment_id))


@allow(Role.ANNOTATOR)
def open_draft(db: Database, actor: Actor, dataset: str) -> int | None:
    """The assignment the annotator was last working on, unsubmitted (where a new session resumes)."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        return s.scalar(
            select(Draft.assignment_id)
            .join(Assignment, Assignment.id == Draft.assignment_id)
            .join(Query, Query.id == Assignment.query_id)
            .where(
                Assignment.user_id == actor.id,
                Query.dataset_id == ds.id,
                Assignment.status != AssignmentStatus.DONE,
            )
            .order_by(Draft.updated_at.desc())
            .limit(1)
        )
