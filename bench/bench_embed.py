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
import logging
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.results_md import append_row  # noqa: E402
from demo.images import render_item_image  # noqa: E402
from demo.vocabulary import sample_item_attributes  # noqa: E402
from models.embedder import DEMO_CHECKPOINT, DEMO_MODEL, ClipEmbedder, load_clip  # noqa: E402

logger = logging.getLogger("bench.embed")
WORK = ROOT / "bench" / "_work"


def make_images(n: int, size: int) -> list[tuple[str, Path]]:
    """``n`` demo JPEGs of ``size`` px under bench/_work (reused by later runs)."""
    folder = WORK / f"embed_{size}px"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    entries = []
    for i in range(n):
        attributes = sample_item_attributes(rng)
        seed = rng.getrandbits(32)
        path = folder / f"{i:07d}.jpg"
        if not path.exists():
            render_item_image(attributes, seed=seed, size=size).save(path, "JPEG", quality=90)
        entries.append((f"{i:07d}", path))
    return entries


def _sync(embedder: ClipEmbedder) -> None:
    if embedder.device.type == "cuda":
        torch.cuda.synchronize()


def ceiling(embedder: ClipEmbedder, entries: list[tuple[str, Path]], batch_size: int) -> float:
    """Images/s of the forward pass on ready, normalised float tensors (already on the device)."""
    pixels = torch.stack([torch.from_numpy(embedder.preprocessor(path)) for _, path in entries])
    batches = [
        torch.addcmul(
            embedder._shift, pixels[i : i + batch_size].to(embedder.device).float(), embedder._scale
        )
        for i in range(0, len(pixels), batch_size)
    ]
    embedder.embed_image_tensors(batches[0])  # warm-up
    _sync(embedder)
    started = time.perf_counter()
    for batch in batches:
        embedder.embed_image_tensors(batch)
    _sync(embedder)
    return len(pixels) / (time.perf_counter() - started)


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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("models.embedder").setLevel(logging.WARNING)

    embedder = load_clip(
        args.model,
        None if args.random_weights else args.pretrained,
        device=args.device,
        allow_random=args.random_weights,
    )
    batch_size = args.batch_size or embedder.default_batch_size()
    entries = make_images(args.n, args.image_size)
    end_to_end(embedder, entries[: batch_size * 2], batch_size, args.workers)  # warm-up, page cache
    # Alternate the two measurements so that both see the same background load on a shared
    # machine; the ratio is the median of the per-round ratios.
    e2e: list[float] = []
    top: list[float] = []
    for _ in range(args.repeats):
        top.append(ceiling(embedder, entries, batch_size))
        e2e.append(end_to_end(embedder, entries, batch_size, args.workers))
    e2e_median, top_median = statistics.median(e2e), statistics.median(top)
    ratio = statistics.median(a / b for a, b in zip(e2e, top, strict=True))
    workers = args.workers if args.workers is not None else embedder.default_num_workers()
    weights = "random weights" if args.random_weights else args.pretrained
    what = f"{args.model} ({weights}), {args.n} JPEGs of {args.image_size} px, batch {batch_size}, {workers} workers"
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
