"""Duplicate groups on the demo: precision and recall over the planted copies (pairs of items in
one group), per kind of copy, and the time the search takes. Goal: precision and recall >= 0.95.

    python bench/bench_duplicates.py [--items 2000] [--seed 0]
    python bench/bench_duplicates.py --scale 100000     # the pair search alone on N demo images

``--scale`` renders N demo images (no database, no CLIP), makes their signatures from thumbnails
as import would, and times the candidate search with its layout test: the part of the job whose
work grows with the pool (the demo's plain-backdrop photos give it many close hashes).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_candidate_recall import scratch_workspace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=0, help="Time the pair search alone on N images.")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale, args.seed)
        return

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


def _signature(spec: tuple[dict[str, str], int]) -> object:  # a worker process's job (picklable)
    from demo.images import JPEG_QUALITY, render_item_image
    from services.core.media import make_thumbnail
    from services.duplicates.signatures import signature_of

    out = io.BytesIO()
    render_item_image(spec[0], seed=spec[1]).save(out, "JPEG", quality=JPEG_QUALITY)
    return signature_of(make_thumbnail(out.getvalue()))


def scale(n: int, seed: int) -> None:
    """The candidate search on ``n`` demo images: close hash pairs, pairs kept, time, memory."""
    import numpy as np

    from bench.results_md import append_row
    from demo.images import IMAGE_SIZE
    from demo.vocabulary import sample_item_attributes
    from services.duplicates import matching
    from services.duplicates.groups import CROP_GATE, MAX_HAMMING, MAX_PIXELS

    rng = random.Random(seed)
    specs = [(sample_item_attributes(rng), rng.getrandbits(32)) for _ in range(n)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        signatures = list(pool.map(_signature, specs, chunksize=500))
    made = time.perf_counter() - started
    hashes = np.array([s.phash for s in signatures], dtype=np.uint64)
    layouts = np.stack([s.layout for s in signatures])
    sizes = np.full((n, 2), IMAGE_SIZE)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tally = [0]
    started = time.perf_counter()
    accept = matching.layout_prefilter(layouts, sizes, MAX_PIXELS, CROP_GATE)
    pairs = matching.hash_pairs(hashes, MAX_HAMMING, accept=accept, tally=tally)
    searched = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{n} images: signatures {made:.0f} s; search {searched:.1f} s, {tally[0]:,} close hash pairs, "
        f"{len(pairs):,} kept for the checks; peak memory {peak / 1024:.0f} MiB (before {rss_before / 1024:.0f})"
    )
    append_row(
        f"duplicate pair search on {n:,} demo images (hash within {MAX_HAMMING} bits + layout test)",
        f"{searched:.1f} s, {tally[0]:,} close hash pairs, {len(pairs):,} kept for the checks, "
        f"peak memory {peak / 1024:.0f} MiB; signatures {made:.0f} s on {os.cpu_count()} processes",
        ("python bench/bench_duplicates.py " + " ".join(sys.argv[1:])).strip(),
        "cpu",
    )


if __name__ == "__main__":
    main()
