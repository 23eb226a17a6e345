"""What consensus reads: every verdict, judgment, adjudication, rewrite and gold answer of a dataset.

One read transaction loads the rows :mod:`services.cleaning.consensus` and
:mod:`services.cleaning.crowd` work from, as plain dataclasses.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from db.enums import Role
from db.models import (
    Candidate,
    Item,
    ItemAdjudication,
    Judgment,
    Qrel,
    Query,
    QueryAdjudication,
    QueryRevision,
    QueryVerdict,
    User,
)
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.lookups import dataset_or_404
from services.datasets.settings import DatasetSettings
from services.gold.answers import GoldAnswer, gold_answers
from services.ranking.generations import pooled_run


@dataclass
class VerdictRow:
    user_id: int
    verdict: str
    reason: str | None
    revision_id: int | None


@dataclass
class QueryAdjudicationRow:
    verdict: str
    reason: str | None
    revision_id: int | None


@dataclass
class ItemAdjudicationRow:
    label: str
    reviewer_id: int | None


@dataclass
class RevisionRow:
    id: int
    text: str
    created_at: datetime | None


@dataclass
class ConsensusData:
    queries: list[Any]
    item_ext: dict[int, str]
    qrels: dict[int, dict[int, int]]
    verdicts: dict[int, dict[int, VerdictRow]]
    judgments: dict[int, dict[int, dict[int, tuple[str, str, dict[str, Any]]]]]  # q -> item -> user -> j
    query_adjudications: dict[int, QueryAdjudicationRow]
    item_adjudications: dict[int, dict[int, ItemAdjudicationRow]]
    revisions: dict[int, RevisionRow]
    user_names: dict[int, str]
    newest: datetime | None
    gold: dict[int, GoldAnswer] = field(default_factory=dict)  # query id -> its gold answer
    # query id -> candidates the workbench shows for it (newest pooled run, top k, labelled positives out)
    shown: dict[int, int] = field(default_factory=dict)


@allow(Role.ADMIN, Role.REVIEWER)
def load_data(db: Database, dataset: str, *, actor: Actor = SYSTEM) -> tuple[int, ConsensusData]:
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        in_ds = Query.dataset_id == ds.id
        queries = s.execute(
            select(
                Query.id,
                Query.ext_id,
                Query.text,
                Query.category,
                Query.language,
                Query.source,
                Query.group_key,
            ).where(in_ds)
        ).all()
        item_ext = dict(s.execute(select(Item.id, Item.ext_id).where(Item.dataset_id == ds.id)).all())
        qrels: dict[int, dict[int, int]] = defaultdict(dict)
        for qid, item_id, score in s.execute(
            select(Qrel.query_id, Qrel.item_id, Qrel.score)
            .join(Query, Query.id == Qrel.query_id)
            .where(in_ds)
        ):
            qrels[qid][item_id] = score

        newest: list[datetime] = []
        verdicts: dict[int, dict[int, VerdictRow]] = defaultdict(dict)
        for v in s.execute(
            select(
                QueryVerdict.user_id,
                QueryVerdict.query_id,
                QueryVerdict.verdict,
                QueryVerdict.reason,
                QueryVerdict.revision_id,
                QueryVerdict.updated_at,
            )
            .join(Query, Query.id == QueryVerdict.query_id)
            .where(in_ds)
        ):
            verdicts[v.query_id][v.user_id] = VerdictRow(v.user_id, v.verdict, v.reason, v.revision_id)
            if v.updated_at is not None:
                newest.append(v.updated_at)

        judgments: dict[int, dict[int, dict[int, tuple[str, str, dict[str, Any]]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for j in s.execute(
            select(
                Judgment.user_id,
                Judgment.query_id,
                Judgment.item_id,
                Judgment.label,
                Judgment.provenance,
                Judgment.provenance_detail,
                Judgment.updated_at,
            )
            .join(Query, Query.id == Judgment.query_id)
            .where(in_ds)
        ):
            judgments[j.query_id][j.item_id][j.user_id] = (
                j.label,
                j.provenance,
                dict(j.provenance_detail or {}),
            )
            if j.updated_at is not None:
                newest.append(j.updated_at)

        query_adj: dict[int, QueryAdjudicationRow] = {}
        item_adj: dict[int, dict[int, ItemAdjudicationRow]] = defaultdict(dict)
        # Oldest first, so the newest per query (and item) is the one left.
        for a in s.execute(
            select(QueryAdjudication)
            .join(Query, Query.id == QueryAdjudication.query_id)
            .where(in_ds)
            .order_by(QueryAdjudication.created_at, QueryAdjudication.id)
        ).scalars():
            query_adj[a.query_id] = QueryAdjudicationRow(a.verdict, a.reason, a.revision_id)
            newest.append(a.created_at)
        for a in s.execute(
            select(ItemAdjudication)
            .join(Query, Query.id == ItemAdjudication.query_id)
            .where(in_ds)
            .order_by(ItemAdjudication.created_at, ItemAdjudication.id)
        ).scalars():
            item_adj[a.query_id][a.item_id] = ItemAdjudicationRow(a.label, a.reviewer_id)
            newest.append(a.created_at)

        revision_ids = {v.revision_id for per in verdicts.values() for v in per.values() if v.revision_id}
        revision_ids |= {a.revision_id for a in query_adj.values() if a.revision_id}
        revisions = {
            r.id: RevisionRow(r.id, r.text, r.created_at)
            for r in s.execute(
                select(QueryRevision.id, QueryRevision.text, QueryRevision.created_at).where(
                    QueryRevision.id.in_(revision_ids)
                )
            )
        }
        user_names = dict(s.execute(select(User.id, User.name)).all())
        data = ConsensusData(
            queries=list(queries),
            item_ext=item_ext,
            qrels=qrels,
            verdicts=verdicts,
            judgments=judgments,
            query_adjudications=query_adj,
            item_adjudications=item_adj,
            revisions=revisions,
            user_names=user_names,
            newest=max(newest) if newest else None,
            gold=gold_answers(s, ds.id),
            shown=_shown(s, ds.id, DatasetSettings.from_stored(ds.settings).k),
        )
        return ds.id, data


def _shown(s: Session, dataset_id: int, k: int) -> dict[int, int]:
    """Per query, how many candidates an annotator is shown (the newest pooled run's top ``k``, less
    the labelled positives, as the workbench shows them)."""
    run_id = s.scalar(select(pooled_run(dataset_id)))
    if run_id is None:
        return {}
    positive = select(Qrel.id).where(
        and_(Qrel.query_id == Candidate.query_id, Qrel.item_id == Candidate.item_id, Qrel.score > 0)
    )
    rows = s.execute(
        select(Candidate.query_id, func.count())
        .where(Candidate.run_id == run_id, Candidate.rank <= k, ~positive.exists())
        .group_by(Candidate.query_id)
    )
    return {qid: n for qid, n in rows}
