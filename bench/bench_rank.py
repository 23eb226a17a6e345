"""Exact top-k ranking: ``models.search.topk`` vs faiss ``IndexFlatIP`` on the same arrays.

Random unit vectors, float32 on CPU. Reports the median seconds of a few runs of each, the ratio
(goal on CPU: topk <= 1.2x faiss) and how many result indices the two agree on.

    python bench/bench_rank.py                                         # 4,000 x 100,000 x 512, top-100, CPU
    python bench/bench_rank.py --device cuda --queries 100000 --pool 1000000 --no-faiss
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.results_md import append_row  # noqa: E402
from models.embedder import resolve_device  # noqa: E402
from models.search import topk  # noqa: E402

logger = logging.getLogger("bench.rank")


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` random unit float32 vectors, generated in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65536):
        block = rng.standard_normal((min(65536, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def time_topk(
    queries: np.ndarray, pool: np.ndarray, k: int, device: torch.device, args: argparse.Namespace
) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    _, indices = topk(
        queries, pool, k, device=device, query_chunk=args.query_chunk, pool_chunk=args.pool_chunk
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, indices


def time_faiss(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    import faiss

    started = time.perf_counter()
    index = faiss.IndexFlatIP(pool.shape[1])
    index.add(pool)
    _, indices = index.search(queries, k)
    return time.perf_counter() - started, indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--query-chunk", type=int, default=None)
    parser.add_argument("--pool-chunk", type=int, default=None)
    parser.add_argument("--no-faiss", action="store_true", help="skip the faiss-cpu comparison")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = resolve_device(args.device)

    queries = unit_vectors(args.queries, args.dim, seed=1)
    pool = unit_vectors(args.pool, args.dim, seed=2)
    if device.type == "cuda":  # what the store holds; topk converts per chunk
        queries, pool = queries.astype(np.float16), pool.astype(np.float16)
    what = f"top-{args.k} of {args.queries:,} queries x {args.pool:,} items x {args.dim} dims"
    command = ("python bench/bench_rank.py " + " ".join(sys.argv[1:])).strip()

    time_topk(queries[:256], pool, args.k, device, args)  # warm-up
    use_faiss = not args.no_faiss
    if use_faiss:
        try:
            import faiss  # noqa: F401
        except ImportError:
            logger.warning("faiss-cpu is not installed (pip install -r requirements-dev.txt); no comparison")
            use_faiss = False
    # On a shared machine the load changes from minute to minute: alternate the two, so that the
    # ratio (median of per-round ratios) compares runs taken under the same load.
    runs: list[tuple[float, np.ndarray]] = []
    faiss_runs: list[tuple[float, np.ndarray]] = []
    for _ in range(args.repeats):
        runs.append(time_topk(queries, pool, args.k, device, args))
        if use_faiss:
            faiss_runs.append(time_faiss(queries.astype(np.float32), pool.astype(np.float32), args.k))
    ours = statistics.median(seconds for seconds, _ in runs)
    logger.info("topk (%s): %.2f s median of %s", device, ours, [round(s, 2) for s, _ in runs])
    append_row(f"topk seconds: {what}", f"{ours:.2f}", command, str(device))
    if not use_faiss:
        return
    theirs = statistics.median(seconds for seconds, _ in faiss_runs)
    ratios = [a / b for (a, _), (b, _) in zip(runs, faiss_runs, strict=True)]
    ratio = statistics.median(ratios)
    agree = float(
        np.mean([len(set(a) & set(b)) / args.k for a, b in zip(runs[0][1], faiss_runs[0][1], strict=True)])
    )
    logger.info("faiss IndexFlatIP (cpu): %.2f s median of %s", theirs, [round(s, 2) for s, _ in faiss_runs])
    logger.info(
        "ratio topk / faiss: %.2f, median of %s (goal <= 1.2); result overlap %.4f",
        ratio,
        [round(r, 2) for r in ratios],
        agree,
    )
    append_row(f"faiss-cpu IndexFlatIP seconds: {what}", f"{theirs:.2f}", command, "cpu")
    append_row(
        f"topk / faiss-cpu time ratio: {what}",
        f"{ratio:.2f} (median of {args.repeats} paired runs; overlap {agree:.4f})",
        command,
        str(device),
    )


if __name__ == "__main__":
    main()
