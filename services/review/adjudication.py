"""Adjudication: a reviewer's final decisions on a disputed query and its items.

The rule every caller obeys (page, CLI, scripts): a reviewer decides every item in dispute (as
:mod:`services.agreement.votes` finds them: any item whose labels differ, whatever the verdicts)
unless they reject the query, which makes its items moot.

Decisions are stored as :class:`db.models.ItemAdjudication` and :class:`db.models.QueryAdjudication`
rows, never updated (the newest per query
and item wins), so the history of a case is kept; the export's consensus honours them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import Label, RejectReason, RevisionKind, Role, Verdict
from db.models import Item, ItemAdjudication, QueryAdjudication, QueryRevision, utcnow
from db.session import Database
from services.agreement.votes import load_votes
from services.core.auth import Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import query_or_404
from services.formats.limits import MAX_QUERY_CHARS

MAX_NOTE_CHARS = 2_000


def latest_adjudications(s: Session, query_id: int) -> dict[int | None, tuple[str, int | None]]:
    """The newest decision per item (``None``: the query itself), with its chosen revision."""
    latest: dict[int | None, tuple[str, int | None]] = {}
    for a in s.scalars(
        select(ItemAdjudication).where(ItemAdjudication.query_id == query_id).order_by(ItemAdjudication.id)
    ):
        latest[a.item_id] = (a.label, None)
    for q in s.scalars(
        select(QueryAdjudication).where(QueryAdjudication.query_id == query_id).order_by(QueryAdjudication.id)
    ):
        latest[None] = (q.verdict, q.revision_id)
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
    ``items`` must decide every item in dispute unless the verdict is ``reject``; it may also
    decide other items of the dataset (e.g. a positive the reviewer adds).

    Raises:
        ValidationError: a missing or unknown verdict, reason or label; an item in dispute left
            undecided (nothing is stored); an item or rewrite of another query or dataset.
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
        query = query_or_404(s, query_id)
        if items:
            found = set(
                s.scalars(select(Item.id).where(Item.id.in_(items), Item.dataset_id == query.dataset_id))
            )
            if found != set(items):
                raise ValidationError("a decided item is not in this query's dataset")
        votes = load_votes(s, [query_id]).get(query_id)
        undecided = (votes.disputed_items() - set(items)) if votes is not None else set()
        if undecided and verdict != Verdict.REJECT:
            names = sorted(s.scalars(select(Item.ext_id).where(Item.id.in_(undecided))))
            shown = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
            raise ValidationError(
                f"decide every item in dispute ({len(names)} left: {shown}), or reject the query"
            )
        if verdict == Verdict.REWRITE:
            text = (rewrite_text or "").strip()
            if text:
                if len(text) > MAX_QUERY_CHARS:
                    raise ValidationError(f"the rewritten query is limited to {MAX_QUERY_CHARS:,} characters")
                revision = QueryRevision(
                    query_id=query_id,
                    text=text,
                    kind=RevisionKind.ADJUDICATED,
                    author_id=actor.id,
                    created_at=now,
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
                ItemAdjudication(
                    query_id=query_id, item_id=item_id, reviewer_id=actor.id, label=label, created_at=now
                )
            )
        s.add(
            QueryAdjudication(
                query_id=query_id,
                reviewer_id=actor.id,
                verdict=verdict,
                reason=reason if verdict == Verdict.REJECT else None,
                revision_id=revision_id,
                note=note.strip()[:MAX_NOTE_CHARS],
                created_at=now,
            )
        )
