"""Inter-annotator agreement of a dataset, from the database (statistics in agreement_stats).

Units and labels:

- item labels: one unit per (query, item) judged by anyone on a query two or more annotators
  submitted. An annotator who submitted the query but did not tick a candidate someone else
  added counts as "not relevant" for it (they were shown the same candidates); labelled
  positives of a query the annotator rejected are missing (no vote).
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

from db.enums import Label, Provenance, Role, Verdict
from db.models import Judgment, Qrel, Query, QueryVerdict, Submission, User
from db.session import Database
from services.agreement import stats
from services.core.auth import Actor, allow
from services.core.lookups import dataset_id_or_404

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
    verdicts: dict[int, dict[int, str]]  # query -> user -> verdict
    labels: dict[int, dict[int, dict[int, tuple[str, str]]]]  # query -> item -> user -> (label, provenance)
    positives: dict[int, set[int]]
    day: dict[int, str]  # query -> day its last submission happened


def _load(s: Session, dataset: str) -> _Data:
    ds_id = dataset_id_or_404(s, dataset)
    verdicts: dict[int, dict[int, str]] = defaultdict(dict)
    for qid, uid, verdict in s.execute(
        select(QueryVerdict.query_id, QueryVerdict.user_id, QueryVerdict.verdict)
        .join(Query)
        .where(Query.dataset_id == ds_id)
    ):
        verdicts[qid][uid] = verdict
    labels: dict[int, dict[int, dict[int, tuple[str, str]]]] = defaultdict(lambda: defaultdict(dict))
    for qid, iid, uid, label, provenance in s.execute(
        select(Judgment.query_id, Judgment.item_id, Judgment.user_id, Judgment.label, Judgment.provenance)
        .join(Query, Query.id == Judgment.query_id)
        .where(Query.dataset_id == ds_id)
    ):
        labels[qid][iid][uid] = (label, provenance)
    positives: dict[int, set[int]] = defaultdict(set)
    for qid, iid in s.execute(
        select(Qrel.query_id, Qrel.item_id).join(Query).where(Query.dataset_id == ds_id, Qrel.score > 0)
    ):
        positives[qid].add(iid)
    day: dict[int, str] = {}
    for qid, at in s.execute(
        select(Submission.query_id, Submission.submitted_at)
        .join(Query, Query.id == Submission.query_id)
        .where(Query.dataset_id == ds_id, Submission.undone_at.is_(None))
    ):
        stamp = at.strftime("%Y-%m-%d")
        day[qid] = max(day.get(qid, stamp), stamp)
    names = dict(s.execute(select(User.id, User.name)).all())
    return _Data(names, verdicts, labels, positives, day)


def _item_units(data: _Data, queries: set[int] | None = None) -> dict[tuple[int, int], dict[str, str]]:
    units: dict[tuple[int, int], dict[str, str]] = {}
    for qid, by_user in data.verdicts.items():
        if len(by_user) < 2 or (queries is not None and qid not in queries):
            continue
        for iid, votes in data.labels.get(qid, {}).items():
            unit: dict[str, str] = {}
            for uid, verdict in by_user.items():
                vote = votes.get(uid)
                if vote is not None:
                    unit[data.names[uid]] = vote[0]
                elif verdict != Verdict.REJECT and iid not in data.positives.get(qid, set()):
                    unit[data.names[uid]] = Label.NOT_RELEVANT  # shown the same candidates, not ticked
                # else: a rejected query leaves its items unjudged: no vote
            if len(unit) >= 2:
                units[(qid, iid)] = unit
    return units


@allow(Role.ADMIN)
def agreement_report(db: Database, actor: Actor, dataset: str) -> AgreementReport:
    """Pairwise and overall agreement on item labels and query verdicts, and set-level figures."""
    with db.read() as s:
        data = _load(s, dataset)
    items = stats.summarise(_item_units(data), categories=ITEM_SCALE)
    verdict_units = {
        qid: {data.names[uid]: v for uid, v in by_user.items()}
        for qid, by_user in data.verdicts.items()
        if len(by_user) >= 2
    }
    verdicts = stats.summarise(verdict_units, categories=tuple(Verdict))

    final: dict[int, dict[int, set[int]]] = defaultdict(dict)  # user -> query -> positives
    for qid, by_user in data.verdicts.items():
        if len(by_user) < 2:
            continue
        for uid, verdict in by_user.items():
            final[uid][qid] = (
                set()
                if verdict == Verdict.REJECT
                else {
                    iid
                    for iid, votes in data.labels.get(qid, {}).items()
                    if votes.get(uid, ("",))[0] == Label.RELEVANT
                }
            )
    sets = []
    for a, b in combinations(sorted(final, key=lambda u: data.names[u]), 2):
        result = stats.set_agreement(final[a], final[b])
        if result.n_units:
            sets.append(
                SetRow(data.names[a], data.names[b], result.n_units, result.mean_jaccard, result.mean_f1)
            )

    added = confirmed = 0
    for qid, by_user in data.verdicts.items():
        if len(by_user) < 2:
            continue
        for votes in data.labels.get(qid, {}).values():
            for uid, (label, provenance) in votes.items():
                if provenance != Provenance.ORIGINAL and label == Label.RELEVANT:
                    added += 1
                    confirmed += any(
                        other != uid and other_label == Label.RELEVANT
                        for other, (other_label, _) in votes.items()
                    )
    return AgreementReport(dataset, items, verdicts, sets, added, confirmed)


@allow(Role.ADMIN)
def agreement_over_time(db: Database, actor: Actor, dataset: str) -> list[dict[str, Any]]:
    """Item-label agreement (percent, AC1, Krippendorff's alpha) over the queries finished by each day."""
    with db.read() as s:
        data = _load(s, dataset)
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


def _fmt(c: stats.Coefficient) -> str:
    return "—" if c.value is None else f"{c.value:.3f}"


def report_lines(report: AgreementReport) -> list[str]:
    """The report as text lines (the CLI prints them; the page shows the same figures)."""
    lines = [f"Agreement on {report.dataset}"]
    for title, summary in (("Item labels", report.items), ("Query verdicts", report.verdicts)):
        lines.append(f"{title}: {summary.n_units} units, raters {', '.join(map(str, summary.raters)) or '—'}")
        lines.append(
            f"  Fleiss' kappa {_fmt(summary.fleiss_kappa)}   Krippendorff's alpha {_fmt(summary.krippendorff_alpha)}"
            f"   Gwet's AC1 {_fmt(summary.gwet_ac1)}"
        )
        for pair in summary.pairs:
            lines.append(
                f"  {pair.rater_a} / {pair.rater_b}: {pair.n_units} units, agreement {_fmt(pair.percent)}, "
                f"Cohen's kappa {_fmt(pair.cohen_kappa)}, AC1 {_fmt(pair.gwet_ac1)}"
            )
    lines.append("Positive sets (per query, annotators' final positives):")
    for row in report.sets:
        jac = "—" if row.mean_jaccard is None else f"{row.mean_jaccard:.3f}"
        f1 = "—" if row.mean_f1 is None else f"{row.mean_f1:.3f}"
        lines.append(
            f"  {row.annotator_a} / {row.annotator_b}: {row.n_queries} queries, Jaccard {jac}, F1 {f1}"
        )
    share = f"{report.added_confirmed / report.added:.1%}" if report.added else "—"
    lines.append(
        f"Added positives also found by another annotator: {report.added_confirmed} / {report.added} ({share})"
    )
    return lines
