"""Candidate recall on the demo: the share of planted false negatives (truth.jsonl) that appear in
the top-N of each ranker and of the pooled candidates. Goal: pooled >= 0.95 and >= every ranker.

    python bench/bench_candidate_recall.py [--items 2000] [--queries 200] [--seed 0] [--top 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scratch_workspace(prefix: str) -> Path:
    """A throwaway SQLite database and data folder, set in the environment, migrated."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["QRELS_DB_URL"] = f"sqlite:///{work / 'bench.db'}"
    os.environ["QRELS_DATA_DIR"] = str(work / "data")
    from db import migrate

    migrate.upgrade(os.environ["QRELS_DB_URL"])
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=50)
    args = parser.parse_args()

    work = scratch_workspace("qrels-bench-recall-")
    from sqlalchemy import select

    from bench.results_md import append_row
    from db.models import Candidate, Item, Query, RankerRun
    from db.session import Database
    from demo.writer import generate_demo
    from services.core.config import load_settings
    from services.datasets.settings import update_settings
    from services.datasets.truth import truth_rows
    from services.ingest.importer import import_bundle
    from services.ranking.embed import embed_dataset
    from services.ranking.models import DEMO_SETTINGS
    from services.ranking.rank import rank_dataset

    db = Database(load_settings().db_url)
    started = time.perf_counter()
    generate_demo(work / "demo", n_items=args.items, n_queries=args.queries, seed=args.seed)
    import_bundle(db, work / "demo", "demo", is_demo=True)
    update_settings(db, "demo", dict(DEMO_SETTINGS))
    embed_dataset(db, "demo")
    rank_dataset(db, "demo", k=args.top)
    elapsed = time.perf_counter() - started

    truth = truth_rows(work / "demo" / "truth.jsonl")
    planted = {(t["query_id"], fn) for t in truth for fn in t["false_negatives"]}
    with db.read() as s:
        item_ext = dict(s.execute(select(Item.id, Item.ext_id)).all())
        query_ext = dict(s.execute(select(Query.id, Query.ext_id)).all())
        recall = {}
        for run_id, name in s.execute(select(RankerRun.id, RankerRun.name)):
            rows = s.execute(
                select(Candidate.query_id, Candidate.item_id).where(
                    Candidate.run_id == run_id, Candidate.rank <= args.top
                )
            )
            found = {(query_ext[q], item_ext[i]) for q, i in rows}
            recall[name] = len(planted & found) / max(len(planted), 1)
    command = "python bench/bench_candidate_recall.py " + " ".join(sys.argv[1:])
    print(f"{len(planted)} planted false negatives; demo built, embedded and ranked in {elapsed:.0f} s")
    for name in sorted(recall, key=lambda n: (n == "pooled", n)):
        print(f"  {name:<11} recall@{args.top} = {recall[name]:.3f}")
    summary = ", ".join(f"{n} {recall[n]:.3f}" for n in sorted(recall, key=lambda n: (n == "pooled", n)))
    append_row(
        f"candidate recall@{args.top} of planted false negatives (demo {args.items} items, {args.queries} queries)",
        f"{summary} ({len(planted)} planted)",
        command.strip(),
        "cpu",
    )


if __name__ == "__main__":
    main()
