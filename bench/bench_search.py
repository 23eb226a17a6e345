"""Pool search after an app start, and an embedding rerun with nothing new, on an imported demo.

Continues from bench/bench_import.py's folder (``<workdir>/<run>``: app.db and data/): embeds and
ranks the demo once (k 50), then times, each in a fresh process as after a restart:

- ``cli.py embed`` with nothing new to embed (wall time of the command, median of ``--repeat``);
- the first pool search of the process (free text), and the second. Where the code builds the
  search index ahead (at the end of the ranking job, services.ranking.search.build_search_index)
  it is built once first, as the job does; the first search then loads it. A second case removes
  the index from disk first: the search answers "preparing" and the time until results come is
  recorded too.

    python bench/bench_search.py --workdir bench/_work/c100k --run before
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_md import append_row  # noqa: E402

DATASET = "demo"
QUERY = "red cotton dress"

FIRST_SEARCH = r"""
import json, sys, time
from db.session import Database
from services.core.auth import SYSTEM
from services.core.errors import QrelsError
import services.ranking.search as search

db = Database(sys.argv[1])
out = {}
if sys.argv[3:] == ["warm"]:  # as the workbench does when an annotator opens the dataset
    started = time.perf_counter()
    while not search.warm_search(db, "demo"):
        time.sleep(0.1)
    out["warm_s"] = time.perf_counter() - started
started = time.perf_counter()
while True:
    try:
        hits = search.search_pool(db, "demo", actor=SYSTEM, text=sys.argv[2], k=24)
        break
    except QrelsError as e:  # "preparing search": answered at once, ask again like the page does
        out.setdefault("preparing_answer_s", time.perf_counter() - started)
        time.sleep(0.2)
out["first_s"] = time.perf_counter() - started
out["hits"] = len(hits)
started = time.perf_counter()
search.search_pool(db, "demo", actor=SYSTEM, text="black leather boots", k=24)
out["second_s"] = time.perf_counter() - started
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
out["rss_anon_mb"] = int(status["RssAnon"].split()[0]) / 1024  # private memory
out["rss_file_mb"] = int(status["RssFile"].split()[0]) / 1024  # mapped files (shared, evictable)
print(json.dumps(out))
"""


def env_for(run: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QRELS_DB_URL": f"sqlite:///{run / 'app.db'}",
        "QRELS_DATA_DIR": str(run / "data"),
    }


def stand_in_images(db, seed: int = 0) -> int:
    """Store random unit vectors for the pool's images not embedded yet; how many were stored.

    Embedding 100,000 images takes the better part of an hour on two shared CPU cores; what this
    benchmark times (loading, searching, asking the store what is missing) depends on how many
    vectors there are and their shape, not on their values.
    """
    import numpy as np

    from services.ranking.models import embedder_for, store_for
    from services.ranking.pool import load_pool

    with db.read() as s:
        pool = load_pool(s, DATASET)
    embedder = embedder_for(pool.settings)
    store = store_for(embedder)
    todo = store.missing("image", sorted({k for k in pool.image_keys if k}))
    rng = np.random.default_rng(seed)
    for start in range(0, len(todo), 8192):
        chunk = todo[start : start + 8192]
        vectors = rng.standard_normal((len(chunk), embedder.dim)).astype(np.float32)
        store.put("image", chunk, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return len(todo)


def prepare(run: Path, k: int, stand_in: bool) -> None:
    """Embed and rank the demo once (kept: a file ``ranked`` marks it)."""
    if (run / "ranked").exists():
        return
    os.environ.update(env_for(run))
    from db.session import Database
    from services.datasets.settings import update_settings
    from services.ranking.embed import embed_dataset
    from services.ranking.models import DEMO_SETTINGS
    from services.ranking.rank import rank_dataset

    db = Database(os.environ["QRELS_DB_URL"])
    update_settings(db, DATASET, {**DEMO_SETTINGS, "k": k})
    started = time.perf_counter()
    if stand_in:
        print(f"{stand_in_images(db)} stand-in image vectors stored")
    embed_dataset(db, DATASET)
    embedded = time.perf_counter() - started
    rank_dataset(db, DATASET, k=k)
    (run / "ranked").write_text(
        f"embedded in {embedded:.0f} s, ranked in {time.perf_counter() - started - embedded:.0f} s\n"
    )


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def first_search(run: Path, *extra: str) -> dict[str, float]:
    command = [sys.executable, "-c", FIRST_SEARCH, f"sqlite:///{run / 'app.db'}", QUERY, *extra]
    _, out = timed(command, env_for(run))
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "_work" / "import")
    parser.add_argument("--run", default="run")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--note", default="")
    parser.add_argument("--only", choices=("embed", "search"), help="time only this")
    parser.add_argument(
        "--stand-in-images",
        action="store_true",
        help="random vectors for the images not embedded yet (see stand_in_images)",
    )
    args = parser.parse_args()
    run = (args.workdir / args.run).resolve()
    prepare(run, args.k, args.stand_in_images)
    env = env_for(run)
    from sqlalchemy import create_engine, text

    with create_engine(env["QRELS_DB_URL"]).connect() as conn:
        n_items = conn.execute(text("SELECT count(*) FROM items")).scalar_one()
        n_queries = conn.execute(text("SELECT count(*) FROM queries")).scalar_one()
    size = f"{n_items:,} items, {n_queries:,} queries"
    command = "python bench/bench_search.py " + " ".join(sys.argv[1:])
    note = f"; {args.note}" if args.note else ""

    if args.only != "search":
        embed_rerun(env, args.repeat, size, command, note)
    if args.only != "embed":
        search_after_start(run, env, size, command, note)


def memory(found: dict[str, float]) -> str:
    return f"RSS after: {found['rss_anon_mb']:.0f} MB private + {found['rss_file_mb']:.0f} MB mapped files"


def embed_rerun(env: dict[str, str], repeat: int, size: str, command: str, note: str) -> None:
    reruns = [timed([sys.executable, "cli.py", "embed", "--dataset", DATASET], env)[0] for _ in range(repeat)]
    print("embed reruns", reruns)
    append_row(
        f"`cli.py embed` rerun with nothing new, wall seconds ({size}, demo model)",
        f"{statistics.median(reruns):.1f} (runs: {', '.join(f'{r:.1f}' for r in reruns)}{note})",
        command,
        "cpu",
    )


def search_after_start(run: Path, env: dict[str, str], size: str, command: str, note: str) -> None:
    import services.ranking.search as search

    build = getattr(search, "build_search_index", None)
    if build is not None:
        index_dir = run / "data" / "search"
        shutil.rmtree(index_dir, ignore_errors=True)
        cold = first_search(run)  # nothing on disk: "preparing", built in the background
        print("no index on disk", cold)
        append_row(
            f"first pool search after a start, no search index on disk ({size})",
            f"'preparing' answered in {cold['preparing_answer_s']:.2f} s; results after "
            f"{cold['first_s']:.1f} s (background build); second search {cold['second_s']:.2f} s; "
            f"{memory(cold)}{note}",
            command,
            "cpu",
        )
        os.environ.update(env)
        from db.session import Database

        shutil.rmtree(index_dir, ignore_errors=True)
        started = time.perf_counter()
        build(Database(env["QRELS_DB_URL"]), DATASET)  # what the ranking job does at its end
        print(f"index built in {time.perf_counter() - started:.1f} s")
    warm = first_search(run)
    print("first search", warm)
    ahead = (
        "search index built by the ranking job" if build is not None else "index built by the first search"
    )
    append_row(
        f"first pool search after a start, seconds ({size}, {ahead})",
        f"{warm['first_s']:.2f}; second search {warm['second_s']:.2f}; {memory(warm)}{note}",
        command,
        "cpu",
    )
    if build is not None:
        landed = first_search(run, "warm")
        print("first search after the workbench's warm-up", landed)
        append_row(
            f"first pool search after a start, the workbench opened first ({size}, {ahead})",
            f"{landed['first_s']:.2f} (the warm-up the workbench starts when it opens took "
            f"{landed['warm_s']:.1f} s in the background); second search {landed['second_s']:.2f}{note}",
            command,
            "cpu",
        )


if __name__ == "__main__":
    main()
