"""Training mode: after an annotator submits a gold query, the gold answer beside their own work.

Only when the dataset's ``gold_training`` setting is on, only for the annotator's own assignment,
only for a gold query, and only once it is submitted: anything else gives None, so a page can
call :func:`gold_feedback` after every submit and show whatever comes back (normal queries give
nothing, so outside training mode gold stays indistinguishable).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from db.enums import AssignmentStatus, Label, Role
from db.models import Assignment, Dataset, Item, Judgment, Qrel, Query, QueryVerdict
from db.session import Database
from services.core.auth import Actor, allow
from services.core.errors import NotFoundError, PermissionDenied
from services.datasets.settings import DatasetSettings
from services.gold.answers import gold_answers
from services.gold.scoring import AnnotatorWork, outcomes


@dataclass(frozen=True)
class ItemFeedback:
    item_id: int
    ext_id: str
    title: str
    kind: str  # a scoring kind: positives confirmed, wrong positives caught, false negatives added
    expected: str  # relevant | not_relevant
    given: str | None  # the annotator's label, None when they left it
    right: bool


@dataclass(frozen=True)
class GoldFeedback:
    """The gold answer of a submitted gold query compared with what the annotator gave."""

    assignment_id: int
    expected_verdict: str  # accept | reject
    given_verdict: str
    verdict_right: bool
    items: list[ItemFeedback]  # empty for a gold reject (only the verdict is scored)
    right: int
    chances: int
    note: str  # the gold answer's note, if any


@allow(Role.ANNOTATOR)
def gold_feedback(db: Database, actor: Actor, assignment_id: int) -> GoldFeedback | None:
    """The gold answer next to the annotator's submitted work, in training mode; else None."""
    with db.read() as s:
        a = s.get(Assignment, assignment_id)
        if a is None:
            raise NotFoundError(f"no assignment {assignment_id}")
        if a.user_id != actor.id:
            raise PermissionDenied("this query is in another annotator's queue")
        query = s.get(Query, a.query_id)
        ds = s.get(Dataset, query.dataset_id)
        if not DatasetSettings.from_stored(ds.settings).gold_training or a.status != AssignmentStatus.DONE:
            return None
        answer = gold_answers(s, ds.id).get(query.id)
        verdict = s.scalar(
            select(QueryVerdict.verdict).where(
                QueryVerdict.user_id == actor.id, QueryVerdict.query_id == query.id
            )
        )
        if answer is None or verdict is None:
            return None
        labels = dict(
            s.execute(
                select(Judgment.item_id, Judgment.label).where(
                    Judgment.user_id == actor.id, Judgment.query_id == query.id
                )
            ).all()
        )
        positives = set(s.scalars(select(Qrel.item_id).where(Qrel.query_id == query.id, Qrel.score > 0)))
        scored = outcomes(answer, positives, AnnotatorWork(verdict, labels))
        item_ids = [i for _, i, _ in scored if i >= 0]
        items = {it.id: it for it in s.scalars(select(Item).where(Item.id.in_(item_ids)))} if item_ids else {}
        expected = {**{i: Label.RELEVANT for i in positives}, **answer.labels}
        return GoldFeedback(
            assignment_id=a.id,
            expected_verdict=answer.verdict,
            given_verdict=verdict,
            verdict_right=scored[0][2],
            items=[
                ItemFeedback(i, items[i].ext_id, items[i].title, kind, expected[i], labels.get(i), ok)
                for kind, i, ok in scored
                if i >= 0
            ],
            right=sum(ok for _, _, ok in scored),
            chances=len(scored),
            note=answer.note,
        )
