"""Duplicate groups on the demo: precision and recall over the planted copies (pairs of items in
one group), per kind of copy, and the time the search takes. Goal: precision and recall >= 0.95.

    python bench/bench_duplicates.py [--items 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_candidate_recall import scratch_workspace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    work = scratch_workspace("qrels-bench-duplicates-")
    from bench.results_md import append_row
    from db.session import Database
    from demo.writer import generate_demo
    from services.core.config import load_settings
    from services.datasets.settings import update_settings
    from services.duplicates.copies import duplicate_score
    from services.duplicates.groups import find_duplicates
    from services.ingest.importer import import_bundle
    from services.ranking.embed import embed_dataset
    from services.ranking.models import DEMO_SETTINGS

    db = Database(load_settings().db_url)
    summary = generate_demo(work / "demo", n_items=args.items, n_queries=args.queries, seed=args.seed)
    import_bundle(db, work / "demo", "demo", is_demo=True)
    update_settings(db, "demo", {**DEMO_SETTINGS, "truth_path": str(work / "demo" / "truth.jsonl")})
    embed_dataset(db, "demo")
    started = time.perf_counter()
    report = find_duplicates(db, "demo")
    first = time.perf_counter() - started
    started = time.perf_counter()
    find_duplicates(db, "demo")  # signatures stored: the rerun after a new embedding
    rerun = time.perf_counter() - started
    score = duplicate_score(db, "demo")

    by_kind = ", ".join(f"{k} {v:.3f}" for k, v in score.recall_by_transform.items())
    print(
        f"{summary.n_copies} planted copies, {score.planted_pairs} planted pairs; {report.groups} groups, "
        f"{score.found_pairs} pairs found ({report.candidate_pairs} hash candidates)\n"
        f"  precision {score.precision:.3f}  recall {score.recall:.3f}  by kind: {by_kind}\n"
        f"  search {first:.1f} s (signatures computed), rerun {rerun:.1f} s"
    )
    command = ("python bench/bench_duplicates.py " + " ".join(sys.argv[1:])).strip()
    size = f"demo {args.items} items, seed {args.seed}"
    append_row(
        f"duplicate groups: precision / recall over planted copy pairs ({size})",
        f"{score.precision:.3f} / {score.recall:.3f} ({score.true_pairs} of {score.found_pairs} found pairs planted, "
        f"{score.planted_pairs} planted; copies grouped with their original by kind: {by_kind})",
        command,
        "cpu",
    )
    append_row(
        f"duplicate search time ({size})",
        f"{first:.1f} s with signatures, {rerun:.1f} s rerun ({report.candidate_pairs} hash candidate pairs)",
        command,
        "cpu",
    )


if __name__ == "__main__":
    main()
