"""Image embedding throughput: JPEG files through ``embed_image_files`` vs the bare forward pass.

The end-to-end figure includes reading and decoding the files in DataLoader workers, batching
and the forward pass; the ceiling is the same model's forward pass (``embed_image_tensors``) on
tensors already preprocessed in memory, on the same device. Goal on CPU: ratio >= 0.8.

    python bench/bench_embed.py                                   # demo model, CPU, 4,000 images
    python bench/bench_embed.py --model ViT-B-32 --pretrained /path/ckpt.pt --device cuda --n 50000
    python bench/bench_embed.py --model ViT-B-32 --random-weights  # speed only, no download
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.results_md import append_row  # noqa: E402
from demo.images import render_item_image  # noqa: E402
from demo.vocabulary import sample_item_attributes  # noqa: E402
from models.embedder import DEMO_CHECKPOINT, DEMO_MODEL, ClipEmbedder, load_clip  # noqa: E402

logger = logging.getLogger("bench.embed")
WORK = ROOT / "bench" / "_work"


def _render(job: tuple[int, int, int, float, Path, dict[str, str]]) -> None:
    _, seed, size, noise, path, attributes = job
    image = render_item_image(attributes, seed=seed, size=size)
    if noise > 0:
        # Flat synthetic drawings compress to a few KB and decode faster than photographs; grain
        # brings the file size and the decoder's work near a product photo's.
        pixels = np.asarray(image, dtype=np.int16)
        grain = np.random.default_rng(seed).normal(0.0, noise, pixels.shape)
        image = Image.fromarray(np.clip(pixels + grain, 0, 255).astype(np.uint8))
    image.save(path, "JPEG", quality=90)


def make_images(n: int, size: int, *, noise: float = 0.0, workers: int = 1) -> list[tuple[str, Path]]:
    """``n`` demo JPEGs of ``size`` px under bench/_work (reused by later runs).

    Args:
        n: how many files.
        size: their side in pixels.
        noise: standard deviation of the grain added to each pixel (0: the plain demo drawing).
        workers: processes drawing and encoding the files that are not there yet.
    """
    folder = WORK / (f"embed_{size}px" + ("" if noise <= 0 else f"_grain{noise:g}"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    entries, jobs = [], []
    for i in range(n):
        attributes = sample_item_attributes(rng)
        seed = rng.getrandbits(32)
        path = folder / f"{i:07d}.jpg"
        if not path.exists():
            jobs.append((i, seed, size, noise, path, attributes))
        entries.append((f"{i:07d}", path))
    if workers > 1 and len(jobs) > 1:
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            list(pool.map(_render, jobs, chunksize=64))
    else:
        for job in jobs:
            _render(job)
    return entries


def _sync(embedder: ClipEmbedder) -> None:
    if embedder.device.type == "cuda":
        torch.cuda.synchronize()


def ceiling(
    embedder: ClipEmbedder, entries: list[tuple[str, Path]], batch_size: int, n: int | None = None
) -> float:
    """Images/s of the forward pass on ready, normalised float tensors (already on the device).

    The batches made from ``entries`` are cycled until ``n`` images (default: all of them) went
    through the model, so a small decoded sample can time a long run.
    """
    pixels = torch.stack([torch.from_numpy(embedder.preprocessor(path)) for _, path in entries])
    batches = [
        torch.addcmul(
            embedder._shift, pixels[i : i + batch_size].to(embedder.device).float(), embedder._scale
        )
        for i in range(0, len(pixels), batch_size)
    ]
    n = n or len(pixels)
    embedder.embed_image_tensors(batches[0])  # warm-up
    _sync(embedder)
    done = 0
    started = time.perf_counter()
    while done < n:
        for batch in batches:
            embedder.embed_image_tensors(batch)
            done += len(batch)
            if done >= n:
                break
    _sync(embedder)
    return done / (time.perf_counter() - started)


def end_to_end(
    embedder: ClipEmbedder, entries: list[tuple[str, Path]], batch_size: int, workers: int | None
) -> float:
    """Images/s from files on disk through ``embed_image_files`` (worker start-up included)."""
    started = time.perf_counter()
    result = embedder.embed_image_files(entries, batch_size=batch_size, num_workers=workers)
    _sync(embedder)
    seconds = time.perf_counter() - started
    if result.failed:
        raise SystemExit(f"{len(result.failed)} images failed, e.g. {result.failed[0]}")
    return len(result.ids) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEMO_MODEL)
    parser.add_argument("--pretrained", default=str(DEMO_CHECKPOINT.relative_to(ROOT)))
    parser.add_argument("--random-weights", action="store_true", help="speed only: skip loading weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=4000, help="images")
    parser.add_argument("--image-size", type=int, default=192, help="side of the JPEG files")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: by device)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--grain", type=float, default=0.0, help="pixel noise s.d.: photo-like file sizes")
    parser.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1, help="processes making JPEGs")
    parser.add_argument(
        "--ceiling-sample",
        type=int,
        default=None,
        help="decode only this many for the ceiling (cycled to --n)",
    )
    parser.add_argument(
        "--precision",
        choices=["auto", "fp16", "bf16"],
        default="auto",
        help="CUDA autocast dtype (auto: what the app uses, bf16 where supported)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("models.embedder").setLevel(logging.WARNING)

    embedder = load_clip(
        args.model,
        None if args.random_weights else args.pretrained,
        device=args.device,
        allow_random=args.random_weights,
    )
    if args.precision != "auto" and embedder.device.type == "cuda":
        dtype = torch.float16 if args.precision == "fp16" else torch.bfloat16
        embedder._autocast = lambda: torch.autocast("cuda", dtype=dtype)  # type: ignore[method-assign]
    batch_size = args.batch_size or embedder.default_batch_size()
    started = time.perf_counter()
    entries = make_images(args.n, args.image_size, noise=args.grain, workers=args.gen_workers)
    mean_kb = statistics.mean(path.stat().st_size for _, path in entries[:2000]) / 1024
    logger.info(
        "%d JPEGs ready in %.1f s (mean %.0f KB)", len(entries), time.perf_counter() - started, mean_kb
    )
    sample = entries[: args.ceiling_sample] if args.ceiling_sample else entries
    end_to_end(embedder, entries[: batch_size * 2], batch_size, args.workers)  # warm-up, page cache
    # Alternate the two measurements so that both see the same background load on a shared
    # machine; the ratio is the median of the per-round ratios.
    e2e: list[float] = []
    top: list[float] = []
    for _ in range(args.repeats):
        top.append(ceiling(embedder, sample, batch_size, len(entries)))
        e2e.append(end_to_end(embedder, entries, batch_size, args.workers))
    e2e_median, top_median = statistics.median(e2e), statistics.median(top)
    ratio = statistics.median(a / b for a, b in zip(e2e, top, strict=True))
    workers = args.workers if args.workers is not None else embedder.default_num_workers()
    weights = "random weights" if args.random_weights else args.pretrained
    precision = f", {args.precision} autocast" if embedder.device.type == "cuda" else ""
    what = (
        f"{args.model} ({weights}{precision}), {args.n} JPEGs of {args.image_size} px "
        f"(mean {mean_kb:.0f} KB), batch {batch_size}, {workers} workers"
    )
    logger.info("end to end: %s images/s (median of %s)", f"{e2e_median:,.0f}", [round(x) for x in e2e])
    logger.info(
        "forward-pass ceiling: %s images/s (median of %s)", f"{top_median:,.0f}", [round(x) for x in top]
    )
    logger.info(
        "ratio: %.2f, median of %s (goal on CPU >= 0.8)",
        ratio,
        [round(a / b, 2) for a, b in zip(e2e, top, strict=True)],
    )
    command = "python bench/bench_embed.py " + " ".join(sys.argv[1:])
    device = str(embedder.device)
    append_row(f"embed images/s end to end: {what}", f"{e2e_median:,.0f}", command.strip(), device)
    append_row(f"embed images/s forward-pass ceiling: {what}", f"{top_median:,.0f}", command.strip(), device)
    append_row(
        f"embed end-to-end / ceiling: {what}",
        f"{ratio:.2f} (median of {args.repeats} paired runs)",
        command.strip(),
        device,
    )


if __name__ == "__main__":
    main()
