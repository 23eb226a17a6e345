"""The systems of a system-preference study: each system's top results per query.

A system is a ranking of the dataset (a ranker run, the pooled fusion, an imported run) or a TREC
run file brought in when the study is created, whose query ids are the dataset's query ext ids and
document ids its item ext ids.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Candidate, Item, Query, RankerRun
from services.core.errors import ValidationError
from services.formats.trec import read_trec_run
from services.ranking.generations import active_runs

Results = dict[str, dict[int, list[int]]]  # system -> query id -> item ids, best first


def system_results(
    s: Session, dataset_id: int, rankings: Sequence[str], run_files: Mapping[str, Path], top_n: int
) -> tuple[Results, Counter[str]]:
    """Each system's top ``top_n`` items per query, and what was left out of the run files, with how many.

    Raises:
        ValidationError: a ranking the dataset lacks, or a run file that ranks none of its queries.
    """
    results = _ranking_results(s, dataset_id, rankings, top_n)
    from_files, skipped = _file_results(s, dataset_id, run_files, top_n)
    results.update(from_files)
    return results, skipped


def _ranking_results(s: Session, dataset_id: int, names: Sequence[str], top_n: int) -> Results:
    runs = dict(
        s.execute(
            select(RankerRun.name, RankerRun.id).where(active_runs(dataset_id), RankerRun.name.in_(names))
        ).all()
    )
    missing = [n for n in names if n not in runs]
    if missing:
        available = s.scalars(
            select(RankerRun.name).where(active_runs(dataset_id)).order_by(RankerRun.name)
        ).all()
        raise ValidationError(
            f"no ranking named {', '.join(missing)} in this dataset; "
            f"available: {', '.join(available) or 'none (run the Ranking job first)'}"
        )
    results: Results = {}
    for run_name in names:
        per_query: dict[int, list[int]] = defaultdict(list)
        for qid, iid in s.execute(
            select(Candidate.query_id, Candidate.item_id)
            .where(Candidate.run_id == runs[run_name])
            .order_by(Candidate.query_id, Candidate.rank)
        ):
            if len(per_query[qid]) < top_n:
                per_query[qid].append(iid)
        results[run_name] = dict(per_query)
    return results


def _file_results(
    s: Session, dataset_id: int, run_files: Mapping[str, Path], top_n: int
) -> tuple[Results, Counter[str]]:
    queries = dict(s.execute(select(Query.ext_id, Query.id).where(Query.dataset_id == dataset_id)).all())
    items = dict(s.execute(select(Item.ext_id, Item.id).where(Item.dataset_id == dataset_id)).all())
    results: Results = {}
    skipped: Counter[str] = Counter()
    for run_name, path in run_files.items():
        run = read_trec_run(Path(path))
        per_query: dict[int, list[int]] = {}
        for qid, ranked in run.items():
            if qid not in queries:
                skipped[f"{run_name}: query not in the dataset"] += 1
                continue
            known = [items[doc] for doc, _ in ranked if doc in items]
            if len(known) < len(ranked):
                skipped[f"{run_name}: document not in the pool"] += len(ranked) - len(known)
            per_query[queries[qid]] = known[:top_n]
        if not per_query:
            raise ValidationError(f"run file {Path(path).name} ranks no query of this dataset")
        results[run_name] = per_query
    return results, skipped
