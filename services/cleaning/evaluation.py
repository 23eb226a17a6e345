"""Before/after evaluation: every ranking of a dataset scored against the original and the cleaned labels.

Metrics come from ranx (Recall@1/5/10/50/100, MRR, nDCG@10), computed over the dataset's stored
rankings (each ranker's run and the pooled one). The cleaned labels are either the consensus of
the database under a policy, or the qrels of an export folder. A run is read to depth 100 and its
stored rank order is kept exactly (score = 1 / rank), so ties cannot reorder it.

The original labels cover every query with an original positive; the cleaned labels cover the
queries the cleaning kept (or exported), so each side is scored on its own query set and the
report gives both sizes. The report also counts, per ranking, the queries whose top 10 holds a
positive the original labels missed: the ranker was right and the original labels scored it wrong.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from db.enums import Role, RunKind
from db.models import Candidate, Item, Qrel, Query, RankerRun
from db.session import Database
from services.cleaning.consensus import compute_consensus
from services.cleaning.policy import Policy
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import BundleError, NotFoundError, ValidationError
from services.core.lookups import dataset_or_404
from services.formats.qrels import read_qrels_tsv, read_trec_qrels
from services.ranking.generations import active_runs

log = logging.getLogger(__name__)

METRICS = ("recall@1", "recall@5", "recall@10", "recall@50", "recall@100", "mrr", "ndcg@10")
DEPTH = 100
MISSED_AT = 10
ORIGINAL = "original"
CLEANED = "cleaned"
# Where an export keeps its qrels, in the order they are looked for.
EXPORT_QRELS = ("qrels.tsv", "beir/qrels/test.tsv", "trec/qrels-test.txt")

# ranx's kernels are compiled numba code that sets its thread count per call; one evaluation at a
# time keeps concurrent app sessions from contending for it.
_RANX_LOCK = threading.Lock()

QrelsDict = dict[str, dict[str, int]]
RunDict = dict[str, dict[str, float]]


@dataclass(frozen=True)
class RunScores:
    """One ranking's metrics against one set of labels."""

    run: str
    labels: str  # original | cleaned
    n_queries: int
    scores: dict[str, float]  # metric -> mean over the labels' queries


@dataclass(frozen=True)
class MissedPositives:
    run: str
    queries: int  # cleaned queries with a positive the original labels lacked in this run's top 10
    of: int  # cleaned queries that have such a positive at all


@dataclass(frozen=True)
class EvaluationReport:
    dataset: str
    cleaned_from: str  # "policy min=2,..." or the export folder
    n_original_queries: int
    n_cleaned_queries: int
    scores: list[RunScores]  # per run: original then cleaned; runs by name, pooled last
    missed: list[MissedPositives]

    def table(self) -> list[dict[str, Any]]:
        """One row per (run, metric) with the original and cleaned values side by side."""
        by_run: dict[str, dict[str, RunScores]] = defaultdict(dict)
        for row in self.scores:
            by_run[row.run][row.labels] = row
        rows = []
        for run, sides in by_run.items():
            for metric in METRICS:
                before = sides[ORIGINAL].scores.get(metric) if ORIGINAL in sides else None
                after = sides[CLEANED].scores.get(metric) if CLEANED in sides else None
                delta = after - before if before is not None and after is not None else None
                rows.append({"run": run, "metric": metric, ORIGINAL: before, CLEANED: after, "delta": delta})
        return rows

    def long_table(self) -> list[dict[str, Any]]:
        """One row per (run, labels, metric): what a grouped bar chart plots."""
        return [
            {"run": r.run, "labels": r.labels, "metric": m, "value": r.scores[m]}
            for r in self.scores
            for m in METRICS
        ]


# --------------------------------------------------------------------------- reading labels


def read_export_qrels(out_dir: Path) -> QrelsDict:
    """The positives of an export folder, from its native, BEIR or TREC qrels (first found).

    The file is read by :mod:`services.formats.qrels`, as an import would read it.

    Raises:
        NotFoundError: the folder holds none of those files.
        ValidationError: a line of the file is malformed (the message names the file and line).
    """
    out_dir = Path(out_dir)
    for rel in EXPORT_QRELS:
        path = out_dir / rel
        if path.is_file():
            break
    else:
        raise NotFoundError(
            f"{out_dir} holds no qrels ({', '.join(EXPORT_QRELS)}); export with the native, beir or trec format"
        )
    try:
        records = read_qrels_tsv(path, rel) if rel.endswith(".tsv") else read_trec_qrels(path, relname=rel)
    except BundleError as e:
        where = f"{rel}:{e.line}: malformed qrels line" if e.line is not None else f"{rel}: malformed qrels"
        raise ValidationError(f"{where}: {e.detail}") from e
    qrels: QrelsDict = defaultdict(dict)
    for r in records:
        if r.score > 0:
            qrels[r.query_ext_id][r.item_ext_id] = r.score
    return dict(qrels)


def _labels(db: Database, dataset: str) -> tuple[int, QrelsDict, dict[str, int]]:
    """(dataset id, original positives by ext ids, query ext id -> query id)."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        original: QrelsDict = defaultdict(dict)
        for q, i, score in s.execute(
            select(Query.ext_id, Item.ext_id, Qrel.score)
            .join(Query, Query.id == Qrel.query_id)
            .join(Item, Item.id == Qrel.item_id)
            .where(Query.dataset_id == ds.id, Qrel.score > 0)
        ):
            original[q][i] = score
        query_ids = dict(s.execute(select(Query.ext_id, Query.id).where(Query.dataset_id == ds.id)).all())
        return ds.id, dict(original), query_ids


def _runs(db: Database, dataset_id: int, depth: int) -> list[tuple[str, RunDict]]:
    with db.read() as s:
        runs = s.execute(
            select(RankerRun.id, RankerRun.name, RankerRun.kind).where(active_runs(dataset_id))
        ).all()
        out = []
        # Rankers by name, the pooled ranking last: the order of the table and chart.
        for run_id, name, _ in sorted(runs, key=lambda r: (r.kind == RunKind.POOLED, r.name)):
            ranking: RunDict = defaultdict(dict)
            for q, i, rank in s.execute(
                select(Query.ext_id, Item.ext_id, Candidate.rank)
                .join(Query, Query.id == Candidate.query_id)
                .join(Item, Item.id == Candidate.item_id)
                .where(Candidate.run_id == run_id, Candidate.rank <= depth)
            ):
                ranking[q][i] = 1.0 / rank
            out.append((name, dict(ranking)))
        return out


# --------------------------------------------------------------------------- scoring


def score_run(qrels: QrelsDict, run: RunDict, metrics: tuple[str, ...] = METRICS) -> dict[str, float]:
    """Mean metrics of ``run`` over the queries of ``qrels`` (a query the run lacks scores 0)."""
    from ranx import Qrels, Run, evaluate  # numba compiles on first use: import only when scoring

    qrels = {q: docs for q, docs in qrels.items() if docs}
    run = {q: docs for q, docs in run.items() if q in qrels and docs}
    if not qrels or not run:
        return dict.fromkeys(metrics, 0.0)
    # make_comparable: a query of the labels that the run lacks counts, with 0.
    with _RANX_LOCK, warnings.catch_warnings():
        # ranx's compiled recall casts its counters; harmless, and noise on a terminal
        warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
        result = evaluate(Qrels(qrels), Run(run), list(metrics), make_comparable=True)
    if len(metrics) == 1:
        result = {metrics[0]: result}
    return {m: float(result[m]) for m in metrics}


@allow(Role.ADMIN, Role.REVIEWER)
def evaluate_dataset(
    db: Database,
    dataset: str,
    *,
    policy: Policy | None = None,
    export_dir: Path | None = None,
    depth: int = DEPTH,
    actor: Actor = SYSTEM,
) -> EvaluationReport:
    """Score every stored ranking of ``dataset`` against the original and the cleaned labels.

    Args:
        policy: the consensus policy for the cleaned labels (default :class:`Policy`()).
        export_dir: read the cleaned labels from this export folder instead.
        depth: how deep each run is read.

    Raises:
        NotFoundError: no such dataset or no qrels in ``export_dir``.
        ValidationError: ``export_dir`` names queries this dataset does not have.
    """
    dataset_id, original, query_ids = _labels(db, dataset)
    if export_dir is not None:
        cleaned = read_export_qrels(Path(export_dir))
        unknown = sorted(set(cleaned) - set(query_ids))
        if unknown:
            raise ValidationError(
                f"the export at {export_dir} is not of dataset {dataset!r}: it has query {unknown[0]!r}, "
                f"which {dataset!r} lacks"
            )
        cleaned_from = str(export_dir)
    else:
        consensus = compute_consensus(db, dataset, policy, actor=actor)
        cleaned = {q.ext_id: {d.ext_id: 1 for d in q.positives} for q in consensus.kept}
        cleaned_from = f"policy {consensus.policy}"

    missed_positives = {q: {i for i in docs if i not in original.get(q, {})} for q, docs in cleaned.items()}
    missed_positives = {q: items for q, items in missed_positives.items() if items}

    scores: list[RunScores] = []
    missed: list[MissedPositives] = []
    for name, run in _runs(db, dataset_id, depth):
        scores.append(RunScores(name, ORIGINAL, len(original), score_run(original, run)))
        scores.append(RunScores(name, CLEANED, len(cleaned), score_run(cleaned, run)))
        hits = 0
        for q, items in missed_positives.items():
            top = run.get(q, {})  # scores are 1 / rank
            if any(top.get(i, 0.0) >= 1.0 / MISSED_AT for i in items):
                hits += 1
        missed.append(MissedPositives(name, hits, len(missed_positives)))
    log.info("evaluated %d runs of %s against %s", len(missed), dataset, cleaned_from)
    return EvaluationReport(dataset, cleaned_from, len(original), len(cleaned), scores, missed)
