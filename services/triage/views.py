"""Reading the stored triage: per query (review, workbench, export) and per dataset (dashboard).

Nothing is computed at page time: these read the rows :func:`services.triage.compute.triage_dataset`
stored. Who may see a query's suspicion: admins and reviewers always; annotators only when the
dataset's ``show_hints`` is on (a score on screen would anchor their judgment).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import Role, Shortcut
from db.models import Query
from db.session import Database
from db.triage import QueryTriage
from services.core.auth import SYSTEM, Actor, allow, may
from services.core.lookups import dataset_or_404
from services.datasets.settings import DatasetSettings

TOP_SUSPICIOUS = 10


@dataclass(frozen=True)
class QueryTriageView:
    """A query's stored triage."""

    query_id: int
    suspicion: float
    signals: dict[str, float]
    shortcut: str
    shortcut_rank: int


def triage_by_query(s: Session, query_ids: Iterable[int]) -> dict[int, QueryTriageView]:
    """The stored triage of each of ``query_ids`` that has one."""
    ids = list(query_ids)
    if not ids:
        return {}
    rows = s.scalars(select(QueryTriage).where(QueryTriage.query_id.in_(ids)))
    return {
        r.query_id: QueryTriageView(
            r.query_id, r.suspicion, dict(r.signals), str(r.shortcut), r.shortcut_rank
        )
        for r in rows
    }


def shortcuts_by_query(s: Session, dataset_id: int) -> dict[int, str]:
    """Query id -> its modality shortcut, for every triaged query of the dataset."""
    rows = s.execute(
        select(QueryTriage.query_id, QueryTriage.shortcut)
        .join(Query, Query.id == QueryTriage.query_id)
        .where(Query.dataset_id == dataset_id)
    )
    return {qid: str(shortcut) for qid, shortcut in rows}


def may_see_hints(actor: Actor | None, settings: DatasetSettings) -> bool:
    """Whether ``actor`` sees suspicion scores on this dataset (see the module doc)."""
    return settings.show_hints or may(actor, Role.REVIEWER)


def hint_for(s: Session, actor: Actor | None, query_id: int, settings: DatasetSettings) -> float | None:
    """The suspicion of a query, if ``actor`` may see it and it has been computed."""
    if not may_see_hints(actor, settings):
        return None
    return s.scalar(select(QueryTriage.suspicion).where(QueryTriage.query_id == query_id))


@dataclass(frozen=True)
class TriageOverview:
    """The dashboard's triage section for one dataset."""

    dataset: str
    n_queries: int
    n_triaged: int
    shortcut_rank: int | None  # the r the stored flags were measured at
    shortcuts: dict[str, int]  # Shortcut value -> queries (every value present)
    queue_order: str
    show_hints: bool
    most_suspicious: list[dict[str, Any]]  # query, text, suspicion, strongest signal

    def share_rows(self) -> list[dict[str, Any]]:
        """(shortcut, queries, share) per category, for a chart; empty when nothing is triaged."""
        if not self.n_triaged:
            return []
        return [
            {"shortcut": name, "queries": n, "share": n / self.n_triaged}
            for name, n in self.shortcuts.items()
        ]


@allow(Role.ADMIN)
def triage_overview(db: Database, dataset: str, *, actor: Actor = SYSTEM) -> TriageOverview:
    """Shares per modality shortcut and the most suspicious queries of a dataset."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        settings = DatasetSettings.from_stored(ds.settings)
        n_queries = s.scalar(select(func.count(Query.id)).where(Query.dataset_id == ds.id)) or 0
        rows = s.execute(
            select(
                Query.ext_id,
                Query.text,
                QueryTriage.suspicion,
                QueryTriage.signals,
                QueryTriage.shortcut,
                QueryTriage.shortcut_rank,
            )
            .join(QueryTriage, QueryTriage.query_id == Query.id)
            .where(Query.dataset_id == ds.id)
            .order_by(QueryTriage.suspicion.desc(), Query.position, Query.id)
        ).all()
    counts = Counter(str(r.shortcut) for r in rows)
    top = [
        {
            "query": r.ext_id,
            "text": r.text,
            "suspicion": round(r.suspicion, 3),
            "strongest signal": max(r.signals, key=r.signals.get) if r.signals else "",
        }
        for r in rows[:TOP_SUSPICIOUS]
    ]
    return TriageOverview(
        dataset=dataset,
        n_queries=n_queries,
        n_triaged=len(rows),
        shortcut_rank=rows[0].shortcut_rank if rows else None,
        shortcuts={name.value: counts.get(name.value, 0) for name in Shortcut},
        queue_order=settings.queue_order,
        show_hints=settings.show_hints,
        most_suspicious=top,
    )
