"""Triage on the demo's planted truth: how many planted problems the first 20 % of an annotator's
queue holds in shuffled and in problems-first order, and how well the modality-shortcut flags find
the queries one modality alone answers.

The demo (2,000 items, 200 queries by default) is built, embedded, ranked and triaged with the demo
CLIP model under bench/_work/ (kept for the next run; ``--rebuild`` makes it again), its queries
assigned to one annotator (overlap 1), and the queue read in each order. Problems are counted per
planted false negative and wrong positive (items) and per bad query; the ceiling is an oracle queue
with the queries holding the most planted problems (of the kind measured) first: the first 20 % has room for only so many queries.

    python bench/bench_triage.py [--items 2000] [--queries 200] [--seed 0] [--rebuild] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATASET = "demo"
WORDS = {
    "false_negative": "planted false negatives",
    "wrong_positive": "planted wrong positives",
    "bad_query": "planted bad queries",
    "all": "all planted problems",
}
ANNOTATOR = "bench_annotator"


def workspace(items: int, queries: int, seed: int, rebuild: bool) -> tuple[Path, bool]:
    """bench/_work/triage-ITEMS-QUERIES-SEED with its database and data folder set in the environment."""
    work = ROOT / "bench" / "_work" / f"triage-{items}-{queries}-{seed}"
    if rebuild and work.exists():
        shutil.rmtree(work)
    fresh = not (work / "bench.db").exists()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["QRELS_DB_URL"] = f"sqlite:///{work / 'bench.db'}"
    os.environ["QRELS_DATA_DIR"] = str(work / "data")
    from db import migrate

    migrate.upgrade(os.environ["QRELS_DB_URL"])
    return work, fresh


def build(db, work: Path, items: int, queries: int, seed: int) -> None:
    from demo.shortcuts import SINGLE_MODALITY_SHARE
    from demo.writer import generate_demo
    from services.datasets.settings import update_settings
    from services.ingest.importer import import_bundle
    from services.ranking.embed import embed_dataset
    from services.ranking.models import DEMO_SETTINGS
    from services.ranking.rank import rank_dataset

    generate_demo(
        work / "demo",
        n_items=items,
        n_queries=queries,
        seed=seed,
        overwrite=True,
        single_modality_share=SINGLE_MODALITY_SHARE,
    )
    import_bundle(db, work / "demo", DATASET, is_demo=True, replace=True)
    update_settings(db, DATASET, dict(DEMO_SETTINGS))
    embed_dataset(db, DATASET)
    rank_dataset(db, DATASET, k=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rebuild", action="store_true", help="build the demo again even if bench/_work has it"
    )
    parser.add_argument("--no-record", action="store_true", help="print only, append nothing to RESULTS.md")
    args = parser.parse_args()

    work, fresh = workspace(args.items, args.queries, args.seed, args.rebuild)
    from sqlalchemy import select

    from bench.bench_load import CHEAP_HASHER
    from bench.results_md import append_row
    from db.models import Query, User
    from db.session import Database
    from demo.triage_truth import PROBLEM_KINDS, front_ceiling, front_shares, load_truth, modality_scores
    from services.core import auth
    from services.core.config import load_settings
    from services.datasets.assignment import assign
    from services.datasets.settings import update_settings
    from services.triage.compute import triage_dataset
    from services.triage.order import pending_queue
    from services.triage.views import shortcuts_by_query

    auth._hasher = CHEAP_HASHER  # the bench annotator's password is not the point
    db = Database(load_settings().db_url)
    started = time.perf_counter()
    if fresh:
        build(db, work, args.items, args.queries, args.seed)
    built = time.perf_counter()
    report = triage_dataset(db, DATASET)
    triaged = time.perf_counter()
    with db.read() as s:
        known = s.scalar(select(User.id).where(User.name == ANNOTATOR))
    if known is None:
        auth.add_user(db, ANNOTATOR, "annotator", auth.generate_password())
    assign(db, DATASET, overlap=1, annotators=[ANNOTATOR])

    truth = load_truth(work / "demo" / "truth.jsonl")
    queues: dict[str, list[str]] = {}
    for order in ("shuffled", "problems_first"):
        update_settings(db, DATASET, {"queue_order": order})
        with db.read() as s:
            ext = dict(s.execute(select(Query.id, Query.ext_id)).all())
            uid = s.scalar(select(User.id).where(User.name == ANNOTATOR))
            ds_id = s.scalar(select(Query.dataset_id).limit(1))
            queues[order] = [ext[q] for q in pending_queue(s, uid, ds_id)]
            flags = {ext[q]: v for q, v in shortcuts_by_query(s, ds_id).items()}
    shares = {order: front_shares(queue, truth) for order, queue in queues.items()}
    ceiling = front_ceiling(truth)
    modality = modality_scores(flags, truth)
    looser = {}  # the flags at r = 2 and 3, for comparison (the dataset is left at r = 1)
    for r in (2, 3):
        update_settings(db, DATASET, {"modality_rank": r})
        triage_dataset(db, DATASET)
        with db.read() as s:
            looser[r] = modality_scores({ext[q]: v for q, v in shortcuts_by_query(s, ds_id).items()}, truth)[
                "any"
            ]
    update_settings(db, DATASET, {"modality_rank": 1})
    triage_dataset(db, DATASET)

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.0f} %"

    print(
        f"demo {args.items} items, {args.queries} queries (seed {args.seed}); "
        f"{'built' if fresh else 'reused'} in {built - started:.0f} s, triage {triaged - built:.1f} s"
    )
    print(f"  {report.summary()}")
    print(f"  ranker weights: {report.ranker_weights}")
    for kind in (*PROBLEM_KINDS, "all"):
        print(
            f"  {kind:<15} first 20 %: problems_first {pct(shares['problems_first'][kind])}, "
            f"shuffled {pct(shares['shuffled'][kind])}, ceiling {pct(ceiling[kind])}"
        )
    for name, m in modality.items():
        print(
            f"  modality {name:<5}: precision {pct(m['precision'])}, recall {pct(m['recall'])} "
            f"({m['flagged']} flagged, {m['planted']} planted)"
        )
    for r, m in looser.items():
        print(f"  modality any at r={r}: precision {pct(m['precision'])}, recall {pct(m['recall'])}")
    if args.no_record:
        return
    command = (
        "python bench/bench_triage.py " + " ".join(a for a in sys.argv[1:] if a != "--rebuild")
    ).strip()
    where = f"(demo {args.items:,} items, {args.queries} queries, seed {args.seed})"
    for kind in (*PROBLEM_KINDS, "all"):
        append_row(
            f"{WORDS[kind]} in the first 20 % of the queue {where}",
            f"problems_first {pct(shares['problems_first'][kind])}, shuffled {pct(shares['shuffled'][kind])} "
            f"(ceiling {pct(ceiling[kind])}: no queue holds more, its first 20 % has room for so many queries)",
            command,
            "cpu",
        )
    r = report.shortcut_rank
    for name, m in modality.items():
        extra = ""
        if name == "any":
            extra = "; " + ", ".join(
                f"r={k}: precision {pct(v['precision'])}, recall {pct(v['recall'])}"
                for k, v in looser.items()
            )
        append_row(
            f"modality-shortcut flag vs planted single-modality queries, {name} (r={r}) {where}",
            f"precision {pct(m['precision'])}, recall {pct(m['recall'])} "
            f"({m['flagged']} flagged, {m['planted']} planted){extra}",
            command,
            "cpu",
        )


if __name__ == "__main__":
    main()
