"""Importing a demo bundle: the whole of ``import_bundle`` (parse, image check, thumbnails, rows).

Generates the demo bundle once (``--items``/``--queries``, kept in ``<workdir>/bundle``), then
imports it into a fresh SQLite database and a fresh data folder under ``<workdir>/<run>`` and
records the wall time with the time of each stage (from the import's progress callback) in
bench/RESULTS.md. The folder is left in place for the benchmarks that continue from an imported
demo (bench/bench_search.py, bench/bench_dashboard.py); ``--scratch`` removes it afterwards.

    python bench/bench_import.py --items 20000 --queries 2000
    python bench/bench_import.py --workdir bench/_work/c100k --run before     # 100,000 / 10,000
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

from bench.results_md import append_row  # noqa: E402


def bundle_of(workdir: Path, items: int, queries: int) -> Path:
    """The demo bundle of the workdir, generated when missing."""
    from demo.writer import generate_demo

    bundle = workdir / "bundle"
    if not (bundle / "items.jsonl").is_file():
        generate_demo(bundle, n_items=items, n_queries=queries, seed=0, overwrite=True)
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "_work" / "import")
    parser.add_argument("--run", default="run", help="sub-folder of the workdir for the database and data")
    parser.add_argument("--scratch", action="store_true", help="remove the database and data afterwards")
    parser.add_argument("--note", default="", help="added to the figure (e.g. 'before')")
    args = parser.parse_args()

    workdir = args.workdir.resolve()
    bundle = bundle_of(workdir, args.items, args.queries)
    run = workdir / args.run
    if run.exists():
        shutil.rmtree(run)
    (run / "data").mkdir(parents=True)
    url = f"sqlite:///{run / 'app.db'}"
    os.environ["QRELS_DB_URL"], os.environ["QRELS_DATA_DIR"] = url, str(run / "data")

    from db import migrate
    from db.session import Database
    from services.ingest.importer import import_bundle

    migrate.upgrade(url)
    stages: dict[str, float] = {}
    last: list = [0.0, "parse and check references"]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        stages[last[1]] = stages.get(last[1], 0.0) + now - last[0]
        last[0], last[1] = now, stage

    started = last[0] = time.perf_counter()
    report = import_bundle(Database(url), bundle, "demo", is_demo=True, progress=progress)
    seconds = time.perf_counter() - started
    stages[last[1]] = stages.get(last[1], 0.0) + time.perf_counter() - last[0]
    parts = ", ".join(f"{name} {s:.0f} s" for name, s in stages.items())
    print(f"imported {report.n_items} items, {report.n_queries} queries in {seconds:.1f} s ({parts})")
    note = f"; {args.note}" if args.note else ""
    append_row(
        f"import seconds: demo bundle of {report.n_items:,} items ({report.n_images:,} images), "
        f"{report.n_queries:,} queries, {report.n_qrels:,} qrels, SQLite",
        f"{seconds:.1f} ({parts}{note})",
        "python bench/bench_import.py " + " ".join(sys.argv[1:]),
        "cpu",
    )
    if args.scratch:
        shutil.rmtree(run)


if __name__ == "__main__":
    main()
