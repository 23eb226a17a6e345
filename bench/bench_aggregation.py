"""Aggregation on a simulated crowd: accuracy against the demo's planted truth of majority vote,
Dawid–Skene and MACE, and how well their competence estimates rank the simulated annotators
(Spearman with each annotator's measured agreement with the truth).

The demo (2,000 items, 200 queries by default) is ranked with the demo CLIP model, six simulated
annotators of differing skill (demo/simulate.py) work it at overlap 3 through the services, with
``--gold N`` planted gold queries mixed in at the dataset's rate.

    python bench/bench_aggregation.py [--items 2000] [--queries 200] [--annotators 6] [--gold 0] [--seed 0]
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
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--annotators", type=int, default=6)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--gold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="print only, append nothing to RESULTS.md")
    args = parser.parse_args()

    work = scratch_workspace("qrels-bench-aggregation-")
    from scipy.stats import spearmanr

    from bench.bench_load import CHEAP_HASHER
    from bench.results_md import append_row
    from db.session import Database
    from demo.setup import load_demo
    from demo.simulate import score_aggregation, simulate_crowd, true_skill
    from services.core import auth
    from services.core.config import load_settings
    from services.gold.sources import gold_from_truth

    auth._hasher = CHEAP_HASHER  # simulated users' passwords are not the point
    settings = load_settings()
    db = Database(settings.db_url)
    started = time.perf_counter()
    load_demo(
        db, settings.data_dir, n_items=args.items, n_queries=args.queries, seed=args.seed, with_users=False
    )
    if args.gold:
        gold_from_truth(db, "demo", count=args.gold, seed=args.seed)
    sim = simulate_crowd(db, "demo", args.annotators, overlap=args.overlap, seed=args.seed)
    skill = true_skill(db, "demo")
    scores = score_aggregation(db, "demo")
    elapsed = time.perf_counter() - started

    size = f"{args.items:,} items, {args.queries:,} queries, {args.annotators} simulated annotators, overlap {args.overlap}, {args.gold} gold"
    command = (
        f"python bench/bench_aggregation.py --items {args.items} --queries {args.queries} "
        f"--annotators {args.annotators} --gold {args.gold} --seed {args.seed}"
    )
    print(f"{sim.submissions} submissions in {elapsed:.0f} s ({work})")
    print("true skill:", {k: round(v, 3) for k, v in skill.items()})
    accuracy = []
    for sc in scores:
        line = f"{sc.method}: items {sc.item_accuracy:.4f} ({sc.items}), queries {sc.query_accuracy:.4f} ({sc.queries})"
        if sc.competence:
            names = sorted(set(sc.competence) & set(skill))
            rho = spearmanr([sc.competence[n] for n in names], [skill[n] for n in names]).statistic
            line += f", Spearman(competence, true skill) {rho:.3f} over {len(names)}"
            print("  competence:", {n: round(sc.competence[n], 3) for n in names})
            if not args.no_record:
                append_row(
                    f"competence ranking of simulated annotators, {sc.method} ({size})",
                    f"Spearman {rho:.3f}",
                    command,
                    "cpu",
                )
        print(line)
        accuracy.append(f"{sc.method} {sc.item_accuracy:.4f} / {sc.query_accuracy:.4f}")
    if not args.no_record:
        append_row(
            f"aggregation accuracy vs planted truth, items / queries ({size}, {scores[0].items} item units)",
            "; ".join(accuracy),
            command,
            "cpu",
        )


if __name__ == "__main__":
    main()
