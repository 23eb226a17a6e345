"""The annotator's past work: every query they finished or skipped, newest first, to open again.

Opening one shows it with the answers given, editable; submitting again replaces them and the
judgment history keeps both (services/annotation/submit.py). Nothing here changes stored work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from db.enums import AssignmentStatus, Role, Verdict
from db.models import Assignment, Query, QueryRevision, QueryVerdict, Submission
from db.session import Database
from services.core.auth import Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404

PAGE = 50
FILTERS = ("all", "skipped", *Verdict)


@dataclass(frozen=True)
class HistoryEntry:
    assignment_id: int
    query_ext_id: str
    text: str  # the text as this annotator left it (their rewrite, else the original)
    status: str  # done | skipped
    verdict: str | None
    when: datetime | None


@dataclass(frozen=True)
class History:
    entries: list[HistoryEntry]
    total: int  # entries matching the filter, of which ``entries`` is one page
    offset: int


@allow(Role.ANNOTATOR)
def my_history(
    db: Database, actor: Actor, dataset: str, *, show: str = "all", offset: int = 0, limit: int = PAGE
) -> History:
    """The annotator's finished and skipped queries of ``dataset``, newest first.

    ``show``: ``all``, ``skipped``, or a verdict (``accept``, ``reject``, ``rewrite``).
    """
    if show not in FILTERS:
        raise ValidationError(f"show one of {', '.join(FILTERS)}, not {show!r}")
    limit = max(1, min(limit, 500))
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        # Finished queries newest first; skipped ones (no time of their own) after them, in queue order.
        unfinished = Assignment.done_at.is_(None)
        stmt = (
            select(
                Assignment,
                Query.ext_id,
                Query.text,
                QueryVerdict.verdict,
                QueryRevision.text.label("rewrite"),
            )
            .join(Query, Query.id == Assignment.query_id)
            .outerjoin(
                QueryVerdict,
                (QueryVerdict.query_id == Assignment.query_id) & (QueryVerdict.user_id == actor.id),
            )
            .outerjoin(QueryRevision, QueryRevision.id == QueryVerdict.revision_id)
            .where(Assignment.user_id == actor.id, Query.dataset_id == ds.id)
        )
        if show == "skipped":
            stmt = stmt.where(Assignment.status == AssignmentStatus.SKIPPED)
        elif show == "all":
            stmt = stmt.where(Assignment.status.in_((AssignmentStatus.DONE, AssignmentStatus.SKIPPED)))
        else:
            stmt = stmt.where(Assignment.status == AssignmentStatus.DONE, QueryVerdict.verdict == show)
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.execute(
            stmt.order_by(unfinished, Assignment.done_at.desc(), Assignment.position, Assignment.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        entries = [
            HistoryEntry(
                a.id,
                ext_id,
                rewrite if verdict == Verdict.REWRITE and rewrite else text,
                a.status,
                verdict if a.status == AssignmentStatus.DONE else None,
                a.done_at,
            )
            for a, ext_id, text, verdict, rewrite in rows
        ]
        return History(entries, total, offset)


@allow(Role.ANNOTATOR)
def last_submitted(db: Database, actor: Actor, dataset: str) -> int | None:
    """The assignment the annotator submitted last in ``dataset`` (undo reopens it, answers kept)."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        return s.scalar(
            select(Submission.assignment_id)
            .join(Query, Query.id == Submission.query_id)
            .where(Submission.user_id == actor.id, Query.dataset_id == ds.id)
            .order_by(Submission.id.desc())
            .limit(1)
        )
