"""Inter-annotator agreement of a dataset, from the database (statistics in agreement_stats).

Units and labels:

- item labels: one unit per (query, item) judged by anyone on a query two or more annotators
  finished, with the votes :mod:`services.agreement.votes` counts (the same votes review
  disputes): a label is a vote whatever the annotator's verdict, so a rejecting annotator's "no"
  to a positive counts; an annotator who approved the query but did not tick a candidate someone
  else added counts as "not relevant" for it (they were shown the same candidates); a rejecting
  annotator's unticked items are no vote.
- query verdicts: one unit per query, label accept / reject / rewrite.
- set level: each annotator's final positive set per query (items they marked relevant), mean
  Jaccard and F1 per pair; and how often a positive one annotator added was also marked relevant
  by another.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import Role, Verdict
from db.models import Query, Submission, User
from db.session import Database
from services.agreement import stats
from services.agreement.votes import QueryVotes, added_positives, load_votes, positive_sets
from services.core.auth import Actor, allow
from services.core.lookups import dataset_id_or_404
from services.core.memo import StampedCache
from services.core.work_stamp import work_stamp

ITEM_SCALE = ("relevant", "not_relevant", "unsure")


@dataclass(frozen=True)
class SetRow:
    annotator_a: str
    annotator_b: str
    n_queries: int
    mean_jaccard: float | None
    mean_f1: float | None


@dataclass(frozen=True)
class AgreementReport:
    dataset: str
    items: stats.AgreementSummary
    verdicts: stats.AgreementSummary
    sets: list[SetRow]
    added: int  # positives added (candidate/search) on queries with 2+ annotators
    added_confirmed: int  # ... that another annotator also marked relevant


@dataclass
class _Data:
    names: dict[int, str]
    votes: dict[int, QueryVotes]  # query -> who voted what (services.agreement.votes)
    day: dict[int, str]  # query -> day its last submission happened


def _load(s: Session, dataset: str) -> _Data:
    ds_id = dataset_id_or_404(s, dataset)
    votes = load_votes(s, s.scalars(select(Query.id).where(Query.dataset_id == ds_id)))
    day: dict[int, str] = {}
    for qid, at in s.execute(
        select(Submission.query_id, Submission.submitted_at)
        .join(Query, Query.id == Submission.query_id)
        .where(Query.dataset_id == ds_id, Submission.undone_at.is_(None))
    ):
        stamp = at.strftime("%Y-%m-%d")
        day[qid] = max(day.get(qid, stamp), stamp)
    names = dict(s.execute(select(User.id, User.name)).all())
    return _Data(names, votes, day)


def _shared(data: _Data, queries: set[int] | None = None) -> list[QueryVotes]:
    """Queries two or more annotators finished (only those can show agreement)."""
    return [
        v for qid, v in data.votes.items() if len(v.verdicts) >= 2 and (queries is None or qid in queries)
    ]


def _item_units(data: _Data, queries: set[int] | None = None) -> dict[tuple[int, int], dict[str, str]]:
    units: dict[tuple[int, int], dict[str, str]] = {}
    for votes in _shared(data, queries):
        for iid in votes.judged_items():
            unit = {data.names[uid]: label for uid, label in votes.votes(iid).items()}
            if len(unit) >= 2:
                units[(votes.query_id, iid)] = unit
    return units


# Both reports per (database, dataset), kept until the dataset's votes change (a submit): see
# services.core.memo. The dashboard asks for both every 30 s per open tab; they are computed
# together from one load of the votes, and only the reports are kept, not the votes.
_reports: StampedCache = StampedCache()


def _cached(db: Database, dataset: str) -> tuple[AgreementReport, list[dict[str, Any]]]:
    with db.read() as s:
        ds_id = dataset_id_or_404(s, dataset)
        stamp = work_stamp(s, ds_id)

    def compute() -> tuple[AgreementReport, list[dict[str, Any]]]:
        with db.read() as s:
            data = _load(s, dataset)
        return _report(dataset, data), _over_time(data)

    return _reports.get((db.url, ds_id), stamp.votes if stamp else None, compute)


@allow(Role.ADMIN)
def agreement_report(db: Database, actor: Actor, dataset: str) -> AgreementReport:
    """Pairwise and overall agreement on item labels and query verdicts, and set-level figures.

    Computed once per change of the dataset's votes, then kept (every app process sees the
    change at its next call: the key is read from the database).
    """
    return _cached(db, dataset)[0]


def _report(dataset: str, data: _Data) -> AgreementReport:
    items = stats.summarise(_item_units(data), categories=ITEM_SCALE)
    shared = _shared(data)
    verdict_units = {v.query_id: {data.names[uid]: x for uid, x in v.verdicts.items()} for v in shared}
    verdicts = stats.summarise(verdict_units, categories=tuple(Verdict))

    final: dict[int, dict[int, set[int]]] = defaultdict(dict)  # user -> query -> positives
    for v in shared:
        for uid, positives in positive_sets(v).items():
            final[uid][v.query_id] = positives
    sets = []
    for a, b in combinations(sorted(final, key=lambda u: data.names[u]), 2):
        result = stats.set_agreement(final[a], final[b])
        if result.n_units:
            sets.append(
                SetRow(data.names[a], data.names[b], result.n_units, result.mean_jaccard, result.mean_f1)
            )
    added = confirmed = 0
    for v in shared:
        for _item, _uid, also in added_positives(v):
            added += 1
            confirmed += also
    return AgreementReport(dataset, items, verdicts, sets, added, confirmed)


@allow(Role.ADMIN)
def agreement_over_time(db: Database, actor: Actor, dataset: str) -> list[dict[str, Any]]:
    """Item-label agreement (percent, AC1, Krippendorff's alpha) over the queries finished by each day."""
    return _cached(db, dataset)[1]


def _over_time(data: _Data) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for day in sorted(set(data.day.values())):
        done = {qid for qid, d in data.day.items() if d <= day}
        units = _item_units(data, done)
        if not units:
            continue
        summary = stats.summarise(units, categories=ITEM_SCALE)
        percent = [p.percent.value for p in summary.pairs if p.percent.value is not None]
        values = {
            "percent agreement": sum(percent) / len(percent) if percent else None,
            "Gwet's AC1": summary.gwet_ac1.value,
            "Krippendorff's alpha": summary.krippendorff_alpha.value,
        }
        rows.extend({"day": day, "statistic": k, "value": v} for k, v in values.items() if v is not None)
    return rows
