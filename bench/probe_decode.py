"""Where end-to-end image embedding spends its time on a GPU machine (a diagnostic, prints only).

Run after ``bench/gpu_check.sh`` when end to end is far below the forward-pass ceiling: it times
one core's decode, threads, a process pool, the DataLoader alone (decoded images and raw bytes),
the DataLoader with the model, and torchvision's GPU JPEG decode (nvjpeg) with the model.

    python bench/probe_decode.py            # CUDA, 8,192 photo-sized 500 px JPEGs
    N=128 DEV=cpu python bench/probe_decode.py
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.nn import functional  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from torchvision.io import ImageReadMode, decode_jpeg  # noqa: E402

from bench.bench_embed import make_images  # noqa: E402
from models.embedder import load_clip  # noqa: E402
from models.images import ImageBatch, ImageFiles, collate, worker_init  # noqa: E402

N = int(os.environ.get("N", 8192))
DEV = os.environ.get("DEV", "cuda")


def rate(count: int, started: float) -> str:
    return f"{count / (time.perf_counter() - started):,.0f}/s"


class FileBytes(Dataset[torch.Tensor]):
    """The raw bytes of each file, undecoded."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.frombuffer(bytearray(self.paths[index].read_bytes()), dtype=torch.uint8)


def as_list(samples: list[torch.Tensor]) -> list[torch.Tensor]:
    return samples


def main() -> None:
    started = time.perf_counter()
    entries = make_images(N, 500, noise=10, workers=os.cpu_count() or 1)
    print(f"{N} JPEGs ready in {time.perf_counter() - started:.1f} s")
    embedder = load_clip("ViT-B-32", None, device=DEV, allow_random=True)
    preprocess = embedder.preprocessor
    paths = [path for _, path in entries]

    def sync() -> None:
        if DEV == "cuda":
            torch.cuda.synchronize()

    started = time.perf_counter()
    for path in paths[:400]:
        preprocess(path)
    print("one core, decode + resize:", rate(len(paths[:400]), started))
    started = time.perf_counter()
    for path in paths[:2000]:
        path.read_bytes()
    print("one core, read the bytes:", rate(len(paths[:2000]), started))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        started = time.perf_counter()
        list(pool.map(preprocess, paths, chunksize=16))
        print("16 threads, decode + resize:", rate(N, started))
    with concurrent.futures.ProcessPoolExecutor(15) as pool:
        list(pool.map(preprocess, paths[:64]))
        started = time.perf_counter()
        list(pool.map(preprocess, paths, chunksize=64))
        print("15 processes, decode + resize + pickle back:", rate(N, started))

    def loader(workers: int, batch_size: int, *, model: bool) -> str:
        batches = DataLoader(
            ImageFiles(entries, preprocess),
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=DEV == "cuda",
            worker_init_fn=worker_init,
            prefetch_factor=4,
        )
        started, count = time.perf_counter(), 0
        batch: ImageBatch
        for batch in batches:
            if model and batch.pixels is not None:
                embedder.embed_image_tensors(batch.pixels)
            count += len(batch.ids)
        sync()
        return rate(count, started)

    for workers, batch_size in ((15, 256), (16, 64), (31, 128)):
        print(
            f"DataLoader alone, {workers} workers, batch {batch_size}:",
            loader(workers, batch_size, model=False),
        )
    print("DataLoader + model, 15 workers, batch 256:", loader(15, 256, model=True))

    raw = DataLoader(FileBytes(paths), batch_size=256, num_workers=8, collate_fn=as_list, prefetch_factor=4)
    started, count = time.perf_counter(), 0
    for files in raw:
        count += len(files)
    print("DataLoader of raw bytes, 8 workers:", rate(count, started))
    for model in (False, True):
        started, count = time.perf_counter(), 0
        for files in raw:
            images = torch.stack(decode_jpeg(files, device=DEV, mode=ImageReadMode.RGB)).float()
            pixels = functional.interpolate(images, size=(224, 224), mode="bicubic", antialias=True)
            if model:
                embedder.embed_image_tensors(pixels.clamp_(0, 255).round_().to(torch.uint8))
            count += len(files)
        sync()
        print(f"torchvision decode_jpeg on {DEV}{' + model' if model else ''}:", rate(count, started))


if __name__ == "__main__":
    main()
