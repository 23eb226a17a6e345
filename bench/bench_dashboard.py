"""The dashboard's refresh at benchmark scale: what one 30-second refresh of an open tab costs.

Continues from bench/bench_import.py's folder (``<workdir>/<run>``: app.db with the demo imported)
and adds, once, three annotators with every query assigned twice and submits through the
services (:func:`services.annotation.submit.submit`) until ``--judgments`` judgments are stored
(each labels every labelled positive of its query, with some disagreement). Then times what the
dashboard page's fragments compute on each refresh (dashboard, dataset overview, agreement
report, agreement over time, gold and competence):

- the first refresh after a start;
- refreshes with no new work (median of ``--repeat``);
- the refresh after one new submit.

    python bench/bench_dashboard.py --workdir bench/_work/c100k --run before
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_md import append_row  # noqa: E402

DATASET = "demo"
ANNOTATORS = ("bench-a", "bench-b", "bench-c")
PASSWORD = "bench password 1"


def submit_one(db, actor, assignment_id: int, rng: random.Random) -> int:
    """Submit one assignment as the annotator: every labelled positive labelled; judgments written."""
    from sqlalchemy import select

    from db.models import Assignment, Qrel
    from services.annotation.submit import LabelInput, QueryWork, submit

    with db.read() as s:
        query_id = s.scalar(select(Assignment.query_id).where(Assignment.id == assignment_id))
        positives = list(s.scalars(select(Qrel.item_id).where(Qrel.query_id == query_id, Qrel.score > 0)))
    labels = {
        item: LabelInput(rng.choices(("relevant", "not_relevant", "unsure"), (85, 12, 3))[0], "original")
        for item in positives
    }
    verdict = "reject" if rng.random() < 0.08 else "accept"
    submit(
        db,
        actor,
        assignment_id,
        QueryWork(
            labels=labels,
            verdict=verdict,
            reason="wrong" if verdict == "reject" else None,
            time_on_task_ms=rng.randint(4_000, 60_000),
            client_token=uuid.uuid4().hex,
        ),
    )
    return len(labels)


def build(db, judgments: int, seed: int) -> None:
    """Annotators, assignments (overlap 2) and submits until ``judgments`` judgments exist."""
    from sqlalchemy import func, select

    from db.models import Judgment
    from services.annotation.queue import next_assignment
    from services.core.auth import Actor, add_user
    from services.datasets.assignment import assign

    with db.read() as s:
        stored = s.scalar(select(func.count()).select_from(Judgment)) or 0
    if stored >= judgments:
        return
    actors = []
    for name in ANNOTATORS:
        try:
            info = add_user(db, name, "annotator", PASSWORD)
        except Exception:  # made by an earlier, interrupted build
            from db.models import User

            with db.read() as s:
                info = s.scalar(select(User).where(User.name == name))
        actors.append(Actor(info.id, name, "annotator"))
    assign(db, DATASET, overlap=2, annotators=list(ANNOTATORS))
    rng = random.Random(seed)
    started = time.perf_counter()
    while stored < judgments:
        for actor in actors:
            aid = next_assignment(db, actor, DATASET)
            if aid is not None:
                stored += submit_one(db, actor, aid, rng)
        print(f"\r{stored} judgments, {time.perf_counter() - started:.0f} s", end="", flush=True)
    print()


def refresh(db, admin) -> float:
    """What the dashboard page computes on one refresh of both fragments."""
    from services.agreement import report
    from services.agreement.dashboard import dashboard, dataset_overview
    from services.gold.dashboard import gold_dashboard

    started = time.perf_counter()
    dashboard(db, admin, DATASET)
    dataset_overview(db, admin)
    report.agreement_report(db, admin, DATASET)
    report.agreement_over_time(db, admin, DATASET)
    gold_dashboard(db, DATASET, actor=admin)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "_work" / "import")
    parser.add_argument("--run", default="run")
    parser.add_argument("--judgments", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    run = (args.workdir / args.run).resolve()
    os.environ["QRELS_DB_URL"] = url = f"sqlite:///{run / 'app.db'}"
    os.environ["QRELS_DATA_DIR"] = str(run / "data")

    from sqlalchemy import func, select

    from db.models import Item, Judgment, Query, Submission
    from db.session import Database
    from services.annotation.queue import next_assignment
    from services.core.auth import SYSTEM, Actor

    db = Database(url)
    build(db, args.judgments, args.seed)
    with db.read() as s:
        n_items = s.scalar(select(func.count()).select_from(Item))
        n_queries = s.scalar(select(func.count()).select_from(Query))
        n_judgments = s.scalar(select(func.count()).select_from(Judgment))
        n_submissions = s.scalar(select(func.count()).select_from(Submission))

    admin = SYSTEM
    first = refresh(db, admin)
    again = [refresh(db, admin) for _ in range(args.repeat)]
    from db.models import User

    with db.read() as s:
        annotator = s.scalar(select(User).where(User.name == ANNOTATORS[0]))
        actor = Actor(annotator.id, annotator.name, "annotator")
    aid = next_assignment(db, actor, DATASET)
    submit_one(db, actor, aid, random.Random(args.seed + 1))
    after_submit = refresh(db, admin)
    size = f"{n_items:,} items, {n_queries:,} queries, {n_judgments:,} judgments in {n_submissions:,} submits"
    print(f"{size}: first {first:.2f} s, no new work {again}, after a submit {after_submit:.2f} s")
    note = f"; {args.note}" if args.note else ""
    append_row(
        f"dashboard refresh seconds, services of both fragments ({size}, SQLite)",
        f"no new work: median {statistics.median(again):.3f} (n={len(again)}); first after a start "
        f"{first:.2f}; after one new submit {after_submit:.2f}{note}",
        "python bench/bench_dashboard.py " + " ".join(sys.argv[1:]),
        "cpu",
    )


if __name__ == "__main__":
    main()
