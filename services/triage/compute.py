"""Triage a ranked dataset: every query's suspicion and modality shortcut, stored in one go.

Run right after ranking (the ranking job and ``cli.py rank`` call :func:`triage_dataset` once), or
again on its own (``cli.py triage``) after the qrels or the ``modality_rank`` setting changed. It
reads the stored runs and qrels only (:mod:`services.triage.signals` says what it computes),
replaces the dataset's triage rows in one transaction and puts the annotators' pending queries in
the dataset's queue order (:mod:`services.triage.order`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from itertools import groupby

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from db.enums import Role, Shortcut
from db.models import Candidate, Qrel, Query, RankerRun, utcnow
from db.session import Database
from db.triage import QueryTriage
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.datasets.settings import DatasetSettings
from services.ranking.generations import active_runs
from services.triage.order import order_pending
from services.triage.signals import TRIAGE_RANKERS, Hits, r_precision, ranker_weights, shortcut, suspicion

log = logging.getLogger(__name__)

INSERT_BATCH = 5_000

#: ranker name -> query id -> (item ids, scores), best first; arrays keep a 10,000-query run small
Runs = dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]


@dataclass(frozen=True)
class TriageReport:
    """What a triage computed: counts per modality shortcut, the rankers' weights, queue moves."""

    dataset: str
    n_queries: int
    shortcut_rank: int
    shortcuts: dict[str, int]  # Shortcut value -> queries
    ranker_weights: dict[str, float]
    mean_suspicion: float
    queue_order: str
    moved: int  # pending assignments that changed place in their queue

    def summary(self) -> str:
        """One line for the CLI and the ranking job's message."""
        flags = ", ".join(f"{name} {self.shortcuts.get(name, 0)}" for name in Shortcut)
        return (
            f"triaged {self.n_queries} queries (mean suspicion {self.mean_suspicion:.2f}); "
            f"solvable by one modality at r={self.shortcut_rank}: {flags}; "
            f"queue {self.queue_order}, {self.moved} pending moved"
        )


def load_runs(s: Session, dataset_id: int) -> Runs:
    """The dataset's runs of the triage rankers (those it has), each query's list best first."""
    runs: Runs = {}
    named = s.execute(
        select(RankerRun.id, RankerRun.name).where(
            active_runs(dataset_id), RankerRun.name.in_(TRIAGE_RANKERS)
        )
    ).all()
    for run_id, name in named:
        lists: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        rows = s.execute(
            select(Candidate.query_id, Candidate.item_id, Candidate.score)
            .where(Candidate.run_id == run_id)
            .order_by(Candidate.query_id, Candidate.rank)
            .execution_options(yield_per=20_000)
        )
        for query_id, group in groupby(rows, key=lambda row: row[0]):
            hits = [(item_id, score) for _, item_id, score in group]
            lists[query_id] = (
                np.fromiter((i for i, _ in hits), dtype=np.int64, count=len(hits)),
                np.fromiter((sc for _, sc in hits), dtype=np.float64, count=len(hits)),
            )
        runs[name] = lists
    return runs


def _hits(run: dict[int, tuple[np.ndarray, np.ndarray]], query_id: int) -> Hits:
    found = run.get(query_id)
    return list(zip(found[0].tolist(), found[1].tolist(), strict=True)) if found is not None else []


def load_positives(s: Session, dataset_id: int) -> dict[int, set[int]]:
    """Each query's labelled positives (qrels with a score above 0), every query present."""
    positives: dict[int, set[int]] = {
        qid: set() for qid in s.scalars(select(Query.id).where(Query.dataset_id == dataset_id))
    }
    rows = s.execute(
        select(Qrel.query_id, Qrel.item_id)
        .join(Query, Query.id == Qrel.query_id)
        .where(Query.dataset_id == dataset_id, Qrel.score > 0)
    )
    for query_id, item_id in rows:
        positives[query_id].add(item_id)
    return positives


def triage_rows(runs: Runs, positives: dict[int, set[int]], r: int) -> tuple[list[dict], dict[str, float]]:
    """Every query's triage row (as insert values) and the rankers' weights, from runs and qrels."""
    per_ranker = {
        name: [r_precision(_hits(run, qid), pos) for qid, pos in positives.items() if pos]
        for name, run in runs.items()
    }
    weights = ranker_weights(per_ranker)
    now = utcnow()
    rows = []
    for qid, pos in positives.items():
        lists: dict[str, Hits] = {name: _hits(run, qid) for name, run in runs.items()}
        found = suspicion(lists, pos, weights)
        rows.append(
            {
                "query_id": qid,
                "suspicion": found.score,
                "signals": found.signals,
                "shortcut": shortcut(lists, pos, r),
                "shortcut_rank": r,
                "computed_at": now,
            }
        )
    return rows, weights


@allow(Role.ADMIN)
def triage_dataset(db: Database, dataset: str, *, actor: Actor = SYSTEM) -> TriageReport:
    """Compute and store every query's suspicion and modality shortcut, then order the queues.

    Raises:
        ValidationError: the dataset has no ranker runs yet (rank it first).
    """
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        dataset_id = ds.id
        settings = DatasetSettings.from_stored(ds.settings)
        runs = load_runs(s, dataset_id)
        positives = load_positives(s, dataset_id)
    if not runs:
        raise ValidationError(
            f"{dataset!r} has no ranker runs yet; run `cli.py rank --dataset {dataset}` first"
        )
    r = settings.modality_rank
    rows, weights = triage_rows(runs, positives, r)
    with db.write() as s:
        ds = dataset_or_404(s, dataset, lock=True)
        queue_order = DatasetSettings.from_stored(ds.settings).queue_order  # as it is now, not at the read
        s.execute(
            delete(QueryTriage).where(
                QueryTriage.query_id.in_(select(Query.id).where(Query.dataset_id == dataset_id))
            )
        )
        for start in range(0, len(rows), INSERT_BATCH):
            s.execute(insert(QueryTriage), rows[start : start + INSERT_BATCH])
        moved = order_pending(s, dataset_id, queue_order)
    counts = Counter(str(row["shortcut"]) for row in rows)
    report = TriageReport(
        dataset=dataset,
        n_queries=len(rows),
        shortcut_rank=r,
        shortcuts={name.value: counts.get(name.value, 0) for name in Shortcut},
        ranker_weights={name: round(w, 4) for name, w in sorted(weights.items())},
        mean_suspicion=sum(row["suspicion"] for row in rows) / len(rows) if rows else 0.0,
        queue_order=queue_order,
        moved=moved,
    )
    log.info("%s: %s", dataset, report.summary())
    return report
