"""Workbench speed: server time from a click on "Submit and next" to the next rendered query.

Builds a demo (default 100,000 items and 10,000 queries, as issue 4 asks), ranks it with the demo
CLIP model, assigns every query to one annotator, then drives pages/workbench.py with Streamlit's
AppTest (the same script run a browser's click triggers) and times each submit + rerender. It
also counts full-size image decodes during the reruns (pixel loads of images over 256 px):
thumbnails are made at import, so the goal is zero. Goals on this CPU: p50 <= 150 ms, p95 <= 300 ms.

    python bench/bench_workbench.py [--items 100000] [--queries 10000] [--clicks 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_candidate_recall import scratch_workspace  # noqa: E402
from bench.results_md import append_row  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args()

    work = scratch_workspace("qrels-bench-wb-")
    from PIL import ImageFile
    from streamlit.testing.v1 import AppTest

    from db.session import Database
    from demo.writer import generate_demo
    from services.core.auth import Actor, add_user
    from services.core.config import load_settings
    from services.datasets.assignment import assign
    from services.datasets.settings import update_settings
    from services.ingest.importer import import_bundle
    from services.ranking.embed import embed_dataset
    from services.ranking.models import DEMO_SETTINGS
    from services.ranking.rank import rank_dataset

    db = Database(load_settings().db_url)
    t0 = time.perf_counter()
    generate_demo(work / "demo", n_items=args.items, n_queries=args.queries, seed=0)
    t1 = time.perf_counter()
    import_bundle(db, work / "demo", "demo", is_demo=True)
    t2 = time.perf_counter()
    update_settings(db, "demo", dict(DEMO_SETTINGS))
    embed_dataset(db, "demo")
    t3 = time.perf_counter()
    rank_dataset(db, "demo", k=args.k)
    t4 = time.perf_counter()
    info = add_user(db, "bench", "annotator", "bench-password")
    assign(db, "demo", overlap=1, annotators=["bench"])
    print(
        f"setup: generate {t1 - t0:.0f} s, import {t2 - t1:.0f} s, embed {t3 - t2:.0f} s, rank {t4 - t3:.0f} s",
        flush=True,
    )

    # Streamlit parses each thumbnail's header (Image.open is lazy); what must not happen is a
    # pixel decode of a full-size image, so count ImageFile.load calls on images over 256 px.
    full_decodes = 0
    original_load = ImageFile.ImageFile.load

    def counting_load(self):
        nonlocal full_decodes
        if max(self.size) > 256:
            full_decodes += 1
        return original_load(self)

    at = AppTest.from_file(str(ROOT / "pages" / "workbench.py"), default_timeout=120)
    at.session_state["qs_user"] = Actor(info.id, info.name, info.role)
    at.session_state["qs_last_seen"] = time.time()
    at.run()
    ImageFile.ImageFile.load = counting_load
    times = []
    try:
        for _ in range(args.clicks + 3):
            at.session_state["qs_last_seen"] = time.time()
            for w in at.get("button_group"):
                if w.key and w.key.startswith("pos_"):
                    w.set_value("Yes")
            start = time.perf_counter()
            at.button(key="wb_submit").click().run()
            times.append((time.perf_counter() - start) * 1000)
            assert not at.exception, at.exception
    finally:
        ImageFile.ImageFile.load = original_load
    times = times[3:]  # warm-up
    q = statistics.quantiles(times, n=100)
    p50, p95 = statistics.median(times), q[94]
    print(f"submit -> next query rendered: p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(times)} clicks")
    print(f"full-size image decodes during the reruns: {full_decodes}")
    command = "python bench/bench_workbench.py " + " ".join(sys.argv[1:])
    append_row(
        f"workbench submit -> next query rendered, server time via AppTest ({args.items:,} items, {args.queries:,} queries)",
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms ({len(times)} clicks); {full_decodes} full-size image decodes in reruns",
        command.strip(),
        "cpu",
    )


if __name__ == "__main__":
    main()
