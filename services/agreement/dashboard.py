"""Figures for the admin dashboard: progress, throughput, verdicts, positives, planted truth.

Everything returns plain tables (lists of dicts, ready for pandas/Altair) computed with a few
aggregate queries; nothing here exposes one annotator's decisions to another annotator (the
dashboard is for admins).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import Label, Provenance, Role
from db.models import Assignment, Dataset, Item, Judgment, Query, QueryVerdict, Submission, User
from db.session import Database
from services.core.auth import Actor, allow
from services.core.lookups import dataset_id_or_404, live_dataset
from services.core.memo import StampedCache
from services.core.work_stamp import work_stamp
from services.datasets.settings import DatasetSettings
from services.datasets.truth import truth_rows


@dataclass(frozen=True)
class PlantedTruthScore:
    """How much of what the demo generator planted the annotators caught."""

    false_negatives: int
    false_negatives_found: int  # marked relevant by at least one annotator
    wrong_positives: int
    wrong_positives_caught: int  # marked not relevant by at least one annotator
    bad_queries: int
    bad_queries_rejected: int  # rejected by at least one annotator
    queries_annotated: int


@dataclass(frozen=True)
class Dashboard:
    progress: list[dict[str, Any]]  # annotator, assigned, done, skipped
    throughput: list[dict[str, Any]]  # hour, annotator, submissions
    median_seconds: list[dict[str, Any]]  # annotator, median seconds per query, submissions
    verdicts: list[dict[str, Any]]  # verdict, reason, count
    positives: list[dict[str, Any]]  # source, outcome, count
    planted: PlantedTruthScore | None


# The figures below the progress chart, per (database, dataset), kept until the dataset's work
# stamp moves (services.core.work_stamp): a refresh with no new work reads nothing else.
_figures: StampedCache = StampedCache()


@dataclass(frozen=True)
class _Figures:
    throughput: list[dict[str, Any]]
    median_seconds: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    positives: list[dict[str, Any]]
    planted: PlantedTruthScore | None


@allow(Role.ADMIN)
def dashboard(db: Database, actor: Actor, dataset: str) -> Dashboard:
    """Every figure of the dashboard for one dataset.

    Progress (assignments, skips) is counted on every call; the rest is computed once per change
    of the dataset's work (a submit, a review decision, new gold, new settings) and kept.
    """
    with db.read() as s:
        ds_id = dataset_id_or_404(s, dataset)
        stamp = work_stamp(s, ds_id)
        names = dict(s.execute(select(User.id, User.name)).all())
        progress_rows: dict[str, dict[str, Any]] = {}
        for uid, status, n in s.execute(
            select(Assignment.user_id, Assignment.status, func.count())
            .join(Query)
            .where(Query.dataset_id == ds_id)
            .group_by(Assignment.user_id, Assignment.status)
        ):
            row = progress_rows.setdefault(
                names[uid], {"annotator": names[uid], "assigned": 0, "done": 0, "skipped": 0}
            )
            row["assigned"] += n
            if status in ("done", "skipped"):
                row[status] += n
    figures = _figures.get((db.url, ds_id), stamp, lambda: _compute_figures(db, ds_id))
    return Dashboard(
        progress=sorted(progress_rows.values(), key=lambda r: r["annotator"]),
        throughput=figures.throughput,
        median_seconds=figures.median_seconds,
        verdicts=figures.verdicts,
        positives=figures.positives,
        planted=figures.planted,
    )


def _compute_figures(db: Database, ds_id: int) -> _Figures:
    with db.read() as s:
        settings = DatasetSettings.from_stored(s.scalar(select(Dataset.settings).where(Dataset.id == ds_id)))
        names = dict(s.execute(select(User.id, User.name)).all())
        submissions = s.execute(
            select(Submission.user_id, Submission.submitted_at, Submission.time_on_task_ms)
            .join(Query, Query.id == Submission.query_id)
            .where(Query.dataset_id == ds_id, Submission.undone_at.is_(None))
        ).all()
        per_hour: Counter[tuple[str, str]] = Counter()
        seconds: dict[str, list[float]] = defaultdict(list)
        for uid, at, ms in submissions:
            per_hour[(at.strftime("%Y-%m-%d %H:00"), names[uid])] += 1
            seconds[names[uid]].append(ms / 1000)

        verdicts = Counter(
            (v, r or "")
            for v, r in s.execute(
                select(QueryVerdict.verdict, QueryVerdict.reason).join(Query).where(Query.dataset_id == ds_id)
            )
        )

        positives: Counter[tuple[str, str]] = Counter()
        for label, provenance, detail in s.execute(
            select(Judgment.label, Judgment.provenance, Judgment.provenance_detail)
            .join(Query, Query.id == Judgment.query_id)
            .where(Query.dataset_id == ds_id)
        ):
            if provenance == Provenance.ORIGINAL:
                outcome = {Label.RELEVANT: "confirmed", Label.NOT_RELEVANT: "rejected"}.get(label, "unsure")
                positives[("original", outcome)] += 1
            elif label == Label.RELEVANT:
                if provenance == Provenance.CANDIDATE:
                    rankers = sorted((detail or {}).get("rankers", {}) or {"unknown": 1})
                    for ranker in rankers:
                        positives[(f"candidate: {ranker}", "added")] += 1
                elif provenance == Provenance.DUPLICATE:
                    positives[("copy of a judged item", "added")] += 1
                else:
                    positives[("search", "added")] += 1

        planted = None
        truth_path = settings.truth_path
        if truth_path and Path(truth_path).is_file():
            planted = _planted_score(s, ds_id, Path(truth_path))

    return _Figures(
        throughput=[{"hour": h, "annotator": a, "submissions": n} for (h, a), n in sorted(per_hour.items())],
        median_seconds=[
            {
                "annotator": a,
                "median seconds per query": round(statistics.median(v), 1),
                "submissions": len(v),
            }
            for a, v in sorted(seconds.items())
        ],
        verdicts=[{"verdict": v, "reason": r, "count": n} for (v, r), n in sorted(verdicts.items())],
        positives=[{"source": src, "outcome": o, "count": n} for (src, o), n in sorted(positives.items())],
        planted=planted,
    )


def _planted_score(s: Session, ds_id: int, truth_path: Path) -> PlantedTruthScore:
    truth = truth_rows(truth_path)
    qext = dict(s.execute(select(Query.ext_id, Query.id).where(Query.dataset_id == ds_id)).all())
    iext = dict(s.execute(select(Item.ext_id, Item.id).where(Item.dataset_id == ds_id)).all())
    labels: dict[tuple[int, int], set[str]] = defaultdict(set)
    for qid, iid, label in s.execute(
        select(Judgment.query_id, Judgment.item_id, Judgment.label)
        .join(Query)
        .where(Query.dataset_id == ds_id)
    ):
        labels[(qid, iid)].add(label)
    rejected = set(
        s.scalars(
            select(QueryVerdict.query_id)
            .join(Query)
            .where(Query.dataset_id == ds_id, QueryVerdict.verdict == "reject")
        )
    )
    annotated = set(s.scalars(select(QueryVerdict.query_id).join(Query).where(Query.dataset_id == ds_id)))
    fn = fn_found = wp = wp_caught = bad = bad_rejected = 0
    for t in truth:
        qid = qext.get(t["query_id"])
        if qid is None or qid not in annotated:
            continue
        for ext in t.get("false_negatives", []):
            fn += 1
            fn_found += Label.RELEVANT in labels.get((qid, iext.get(ext, -1)), set())
        if not t.get("bad"):
            for ext in t.get("wrong_positives", []):
                wp += 1
                wp_caught += Label.NOT_RELEVANT in labels.get((qid, iext.get(ext, -1)), set())
        else:
            bad += 1
            bad_rejected += qid in rejected
    return PlantedTruthScore(fn, fn_found, wp, wp_caught, bad, bad_rejected, len(annotated))


@allow(Role.ADMIN)
def dataset_overview(db: Database, actor: Actor) -> list[dict[str, Any]]:
    """Progress of every dataset: queries, assignments, done."""
    with db.read() as s:
        rows = s.execute(
            select(Dataset.name, Assignment.status, func.count())
            .join(Query, Query.dataset_id == Dataset.id)
            .join(Assignment, Assignment.query_id == Query.id)
            .where(live_dataset())
            .group_by(Dataset.name, Assignment.status)
        ).all()
    table: dict[str, dict[str, Any]] = {}
    for name, status, n in rows:
        row = table.setdefault(name, {"dataset": name, "assigned": 0, "done": 0})
        row["assigned"] += n
        if status == "done":
            row["done"] += n
    return sorted(table.values(), key=lambda r: r["dataset"])
