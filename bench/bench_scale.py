"""Scale: the 100,000-item / 10,000-query demo stage by stage, and annotators during a re-rank.

Builds (or reuses, under ``bench/_work/scale-<items>/``) the demo catalogue with the demo code and
runs the pipeline through the services, timing each stage with its peak RSS and the database size
after it: generate, import, embed, rank, assign. Then ``--annotators`` simulated annotators
(threads through the workbench's services: load_task, a steady think time, submit; a SaveFailed
is retried like the page's button and counted) work while an admin re-ranks the dataset; their
load_task and submit p50 / p95 / max during the re-rank and the SaveFailed count are the figures
issue 14 sets targets for (submit p95 <= 300 ms, max <= 1 s, 0 SaveFailed). Last: a dashboard
refresh, the first pool search, and the dataset's delete (total seconds and the longest write
transaction) while the annotators work on a second, small dataset.

SQLite, and PostgreSQL too when ``QRELS_TEST_PG_URL`` names a server (a fresh database each run).

    python bench/bench_scale.py                                  # 100,000 items, 10,000 queries
    python bench/bench_scale.py --items 2000 --queries 200 --no-append   # while developing
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench import bench_load  # noqa: E402
from bench.results_md import append_row  # noqa: E402
from db import migrate  # noqa: E402
from db.session import Database, dispose_engine  # noqa: E402
from services.annotation.queue import next_assignment  # noqa: E402
from services.annotation.submit import submit  # noqa: E402
from services.annotation.task import load_task  # noqa: E402
from services.core import auth  # noqa: E402
from services.core.auth import SYSTEM  # noqa: E402
from services.core.errors import SaveFailed  # noqa: E402

log = logging.getLogger("bench.scale")
DATASET = "demo"
SIDE = "side"  # a small dataset the annotators work on while the demo is deleted


# --------------------------------------------------------------------------- measuring


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak RSS (VmHWM) of this process
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def db_size_mb(db: Database) -> float:
    if db.is_sqlite:
        path = Path(db.engine.url.database)
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    with db.read() as s:
        return s.scalar(text("SELECT pg_database_size(current_database())")) / 2**20


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    db_mb: float = 0.0
    note: str = ""

    def cell(self) -> str:
        note = f", {self.note}" if self.note else ""
        return f"{self.name} {self.seconds:.0f} s (peak RSS {self.peak_rss_mb:,.0f} MB, db {self.db_mb:,.0f} MB{note})"


@contextmanager
def stage(stages: list[Stage], name: str, db: Database | None) -> Iterator[Stage]:
    _reset_peak_rss()
    record = Stage(name)
    started = time.perf_counter()
    yield record
    record.seconds = time.perf_counter() - started
    record.peak_rss_mb = _peak_rss_mb()
    record.db_mb = db_size_mb(db) if db is not None else 0.0
    stages.append(record)
    print(f"  {record.cell()}", flush=True)


class WriteTimer:
    """Wraps ``db.write`` to record how long each write transaction of a thread held it."""

    def __init__(self, db: Database) -> None:
        self.holds: list[tuple[str, float]] = []
        original = db.write
        timer = self

        @contextmanager
        def timed() -> Iterator:
            with original() as s:
                started = time.perf_counter()
                yield s
                s.flush()
            timer.holds.append((threading.current_thread().name, time.perf_counter() - started))

        db.write = timed  # type: ignore[method-assign]

    def longest(self, prefix: str) -> float:
        return max((s for name, s in self.holds if name.startswith(prefix)), default=0.0)


# --------------------------------------------------------------------------- annotators


@dataclass
class Calls:
    load: list[tuple[float, float]] = field(default_factory=list)  # (started, seconds)
    submit: list[tuple[float, float]] = field(default_factory=list)
    save_failed: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def window(self, kind: str, start: float, end: float) -> list[float]:
        return [s for t, s in getattr(self, kind) if start <= t <= end]

    def failed(self, start: float, end: float) -> int:
        return sum(1 for t, _ in self.save_failed if start <= t <= end)


def annotate(
    db: Database, dataset: str, name: str, calls: Calls, stop: threading.Event, think_s: float
) -> None:
    """One annotator through their queue at a steady pace until ``stop``."""
    pace = random.Random(name)
    try:
        actor = auth.authenticate(db, name, bench_load.PASSWORD)
        current = next_assignment(db, actor, dataset)
        while current is not None and not stop.is_set():
            t0 = time.perf_counter()
            task = load_task(db, actor, current)
            with calls.lock:
                calls.load.append((t0, time.perf_counter() - t0))
            decision = bench_load.decision_for(task, actor.id, f"{name}-{current}")
            stop.wait(pace.uniform(0.5, 1.5) * think_s)
            t0 = time.perf_counter()
            for attempt in range(6):
                try:
                    result = submit(db, actor, current, decision)
                    break
                except SaveFailed as e:
                    with calls.lock:
                        calls.save_failed.append((t0, str(e)))
                    if attempt == 5:
                        raise
                    time.sleep(0.5 * (attempt + 1))
            with calls.lock:
                calls.submit.append((t0, time.perf_counter() - t0))
            current = result.next_assignment_id or next_assignment(db, actor, dataset)
    except Exception as e:
        with calls.lock:
            calls.errors.append(f"{name}: {type(e).__name__}: {e}")


@contextmanager
def annotators_working(db: Database, dataset: str, names: list[str], think_s: float) -> Iterator[Calls]:
    calls, stop = Calls(), threading.Event()
    threads = [
        threading.Thread(
            target=annotate, args=(db, dataset, n, calls, stop, think_s), name=f"ann-{n}", daemon=True
        )
        for n in names
    ]
    for t in threads:
        t.start()
    try:
        yield calls
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)


def summary(calls: Calls, start: float, end: float) -> str:
    p = bench_load.percentile

    def ms(values: list[float], q: float) -> str:
        return f"{p(values, q) * 1000:.0f}" if values else "-"

    load, sub = calls.window("load", start, end), calls.window("submit", start, end)
    return (
        f"submit p50 {ms(sub, 50)} ms, p95 {ms(sub, 95)} ms, max {max(sub, default=0) * 1000:.0f} ms "
        f"({len(sub)} submits); load_task p50 {ms(load, 50)} ms, p95 {ms(load, 95)} ms, "
        f"max {max(load, default=0) * 1000:.0f} ms; SaveFailed {calls.failed(start, end)}"
    )


# --------------------------------------------------------------------------- the pipeline


def pipeline(
    label: str, url: str, work: Path, args: argparse.Namespace, emit: Callable[[str, str], None]
) -> None:
    from demo.writer import generate_demo
    from models.embedder import DEMO_MODEL
    from services.agreement.dashboard import dashboard
    from services.datasets.assignment import assign
    from services.datasets.catalog import delete_dataset
    from services.datasets.settings import update_settings
    from services.ingest.importer import import_bundle
    from services.ranking.embed import embed_dataset
    from services.ranking.rank import rank_dataset
    from services.ranking.search import index_after_ranking, search_pool
    from services.ranking.search_index import clear_search_cache

    data_dir, bundle = work / "data", work / "bundle"
    os.environ["QRELS_DATA_DIR"] = str(data_dir)
    print(f"{label}: {url.split('@')[-1]}", flush=True)
    stages: list[Stage] = []
    with stage(stages, "generate", None) as st:
        if (bundle / "items.jsonl").is_file():
            st.note = "reused"
        else:
            generate_demo(bundle, n_items=args.items, n_queries=args.queries, seed=0, overwrite=True)
    migrate.upgrade(url)
    db = Database(url)
    writes = WriteTimer(db)
    with stage(stages, "import", db):
        import_bundle(db, bundle, DATASET, is_demo=True, data_dir=data_dir)
    update_settings(db, DATASET, {"clip_model": DEMO_MODEL, "clip_pretrained": "demo"})  # as the demo
    with stage(stages, "embed", db):
        embed_dataset(db, DATASET, data_dir=data_dir)
    with stage(stages, "rank", db) as st:
        report = rank_dataset(db, DATASET, k=args.k, data_dir=data_dir)
        st.note = f"{sum(report.runs.values()):,} candidate rows"
    names = bench_load.add_annotators(db, args.annotators, prefix="scale", hasher=bench_load.CHEAP_HASHER)
    with stage(stages, "assign", db):
        assign(db, DATASET, overlap=1, annotators=names)
    size = f"{args.items:,} items, {args.queries:,} queries"
    emit(f"scale pipeline, {label}: {size}, k={args.k}", "; ".join(s.cell() for s in stages))

    with bench_load.cheap_hashing(), annotators_working(db, DATASET, names, args.think_s) as calls:
        time.sleep(args.warmup_s)  # a steady state before the re-rank
        before = time.perf_counter()
        writes.holds.clear()
        rank_report = rank_dataset(db, DATASET, k=args.k, data_dir=data_dir)
        after = time.perf_counter()
        time.sleep(args.warmup_s)
    rerank_s = after - before
    value = (
        f"during a {rerank_s:.0f} s re-rank ({sum(rank_report.runs.values()):,} rows in batches, longest write "
        f"{rank_report.longest_write_s * 1000:.0f} ms): {summary(calls, before, after)}; "
        f"before it: {summary(calls, 0, before)}"
    )
    if calls.errors:
        value += f"; errors: {calls.errors[:3]}"
    emit(
        f"annotators during a re-rank, {label}: {size}, {args.annotators} annotators, {args.think_s:g} s think time",
        value,
    )

    with stage([], "dashboard", db) as st:
        dashboard(db, SYSTEM, DATASET)
    dash_s = st.seconds
    # What the ranking job and ``cli.py rank`` do at their end: build the pool-search index.
    with stage([], "search index", db) as st:
        index_after_ranking(db, DATASET, data_dir=data_dir)
    index_s = st.seconds
    clear_search_cache()  # the index reopened from disk, as in another app process (the model stays loaded)
    with stage([], "search", db) as st:
        search_pool(db, DATASET, actor=SYSTEM, text="red cotton shirt", k=20, data_dir=data_dir)
    first_s = st.seconds
    with stage([], "search", db) as st:
        search_pool(db, DATASET, actor=SYSTEM, text="blue leather shoe", k=20, data_dir=data_dir)
    emit(
        f"dashboard refresh and first pool search, {label}: {size}",
        f"dashboard {dash_s:.1f} s; search index built after the re-rank {index_s:.1f} s (in the ranking job); "
        f"first search with the index reopened from disk (model loaded) {first_s:.2f} s, next {st.seconds:.2f} s",
    )

    side = work / f"side-{label}"
    shutil.rmtree(side, ignore_errors=True)
    bench_load.build_dataset(db, side, SIDE, n_queries=400)
    assign(db, SIDE, overlap=1, annotators=names)
    with bench_load.cheap_hashing(), annotators_working(db, SIDE, names, args.think_s) as calls:
        time.sleep(2)
        writes.holds.clear()
        before = time.perf_counter()
        purge = delete_dataset(db, DATASET)
        after = time.perf_counter()
    emit(
        f"dataset delete, {label}: {size}",
        f"{after - before:.0f} s in {purge.batches} transactions, longest {purge.longest_write_s * 1000:.0f} ms "
        f"(longest of any write in the process {writes.longest('') * 1000:.0f} ms); annotators on another dataset meanwhile: "
        f"{summary(calls, before, after)}",
    )
    dispose_engine(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--annotators", type=int, default=6)
    parser.add_argument("--think-s", type=float, default=1.0, help="mean seconds between load and submit")
    parser.add_argument(
        "--warmup-s", type=float, default=15.0, help="annotators alone before and after the re-rank"
    )
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--no-append", action="store_true", help="print figures only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    work = ROOT / "bench" / "_work" / f"scale-{args.items}"
    work.mkdir(parents=True, exist_ok=True)
    command = "python bench/bench_scale.py " + " ".join(sys.argv[1:])

    def emit(figure: str, value: str) -> None:
        print(f"{figure}: {value}", flush=True)
        if not args.no_append:
            append_row(figure, value, command.strip(), "cpu")

    sqlite_path = work / "scale.db"
    for path in work.glob("scale.db*"):
        path.unlink()
    pipeline("SQLite", f"sqlite:///{sqlite_path}", work, args, emit)
    pg_admin = os.environ.get("QRELS_TEST_PG_URL")
    if pg_admin and not args.sqlite_only:
        url = bench_load._fresh_postgres(pg_admin)
        try:
            pipeline("PostgreSQL", url, work, args, emit)
        finally:
            dispose_engine(url)
            bench_load._drop_postgres(pg_admin, url)


if __name__ == "__main__":
    main()
