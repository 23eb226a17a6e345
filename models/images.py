"""Image files to uint8 pixel arrays for a CLIP model, decoded in DataLoader workers.

:class:`ImagePreprocessor` decodes one file (PIL, JPEG draft mode near the model's input size)
with the geometry of open_clip's eval transform; normalisation is left to the embedder, batched on
the device, so workers ship a quarter of the bytes. :class:`ImageFiles` and :func:`collate` turn
``(id, path)`` entries into batches; unreadable files are set aside by id with their reason.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

__all__ = ["Failure", "ImageBatch", "ImageFiles", "ImagePreprocessor", "collate", "worker_init"]

#: A file that could not be read: ``(id, reason)``. Shared by the dataset, :func:`collate` and
#: :class:`models.embedder.EmbedResult`.
Failure = tuple[str, str]


class ImagePreprocessor:
    """Decode an image file into a uint8 ``[3, H, W]`` array, as open_clip's eval transform would.

    The geometry (resize mode, interpolation, centre crop or pad) follows the model's
    ``preprocess_cfg``; normalisation (mean/std) is left to :meth:`ClipEmbedder.embed_image_tensors`.
    JPEGs are decoded with ``draft`` at the smallest DCT scale that still covers the input size.
    The object is picklable, for DataLoader workers.

    Args:
        preprocess_cfg: open_clip's ``get_model_preprocess_cfg(model)``.
    """

    def __init__(self, preprocess_cfg: dict[str, Any]) -> None:
        size = preprocess_cfg.get("size", 224)
        self.height, self.width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.resize_mode: str = preprocess_cfg.get("resize_mode") or "shortest"
        interpolation = preprocess_cfg.get("interpolation") or "bicubic"
        self.resample = Image.Resampling.BILINEAR if interpolation == "bilinear" else Image.Resampling.BICUBIC
        self.fill_color = int(preprocess_cfg.get("fill_color", 0) or 0)
        if self.height != self.width and self.resize_mode != "squash":
            self.resize_mode = "squash"  # torchvision's Resize with a (h, w) tuple does the same

    def __call__(self, source: Path | BinaryIO) -> np.ndarray:
        """Return the image in ``source`` (a path or a binary file object) as uint8 ``[3, H, W]``.

        Raises:
            OSError, ValueError, Image.DecompressionBombError: the file is unreadable.
        """
        name = None
        if isinstance(source, (str, Path)):
            # One read instead of PIL's many small reads and seeks on a file handle.
            name = Path(source).name
            source = io.BytesIO(Path(source).read_bytes())
        try:
            opened = Image.open(source)
        except UnidentifiedImageError:
            if name is None:
                raise
            # PIL names the in-memory buffer ("<_io.BytesIO object at 0x…>"): name the file.
            raise UnidentifiedImageError(f"cannot identify image file {name!r}") from None
        with opened as image:
            if image.format == "JPEG":
                image.draft("RGB", (self.width, self.height))
            image.load()
            rgb = image if image.mode == "RGB" else image.convert("RGB")
        out = self._geometry(rgb)
        return np.ascontiguousarray(np.asarray(out, dtype=np.uint8).transpose(2, 0, 1))

    def _geometry(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        tw, th = self.width, self.height
        if self.resize_mode == "squash":
            return image.resize((tw, th), self.resample)
        if self.resize_mode == "longest":
            scale = min(tw / w, th / h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            canvas = Image.new("RGB", (tw, th), (self.fill_color,) * 3)
            canvas.paste(image.resize((nw, nh), self.resample), ((tw - nw) // 2, (th - nh) // 2))
            return canvas
        # "shortest", as torchvision.transforms.Resize(int) + CenterCrop.
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = tw, int(tw * long / short)
        nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
        if (nw, nh) != (w, h):
            image = image.resize((nw, nh), self.resample)
        left = round((nw - tw) / 2.0)
        top = round((nh - th) / 2.0)
        return image.crop((left, top, left + tw, top + th))


class ImageFiles(Dataset[tuple[str, np.ndarray | None, str | None]]):
    """``(id, uint8 array or None, failure reason or None)`` for each entry."""

    def __init__(self, entries: Sequence[tuple[str, Path]], preprocess: ImagePreprocessor) -> None:
        self.entries = entries
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray | None, str | None]:
        item_id, path = self.entries[index]
        try:
            return item_id, self.preprocess(Path(path)), None
        except Exception as e:
            # One bad file must not end a job over a million images; PIL raises OSError,
            # ValueError, SyntaxError, EOFError, struct.error or DecompressionBombError here.
            return item_id, None, f"{type(e).__name__}: {e}"


@dataclass
class ImageBatch:
    """One DataLoader batch: the decoded images (``pixels`` row ``i`` for ``ids[i]``) and the failures."""

    ids: list[str]
    pixels: torch.Tensor | None
    failed: list[Failure]

    def pin_memory(self) -> ImageBatch:
        if self.pixels is not None:
            self.pixels = self.pixels.pin_memory()
        return self


def collate(samples: list[tuple[str, np.ndarray | None, str | None]]) -> ImageBatch:
    """Stack the decoded images; set aside the failures with their reasons."""
    ids = [item_id for item_id, pixels, _ in samples if pixels is not None]
    failed = [(item_id, reason or "unreadable") for item_id, pixels, reason in samples if pixels is None]
    arrays = [pixels for _, pixels, _ in samples if pixels is not None]
    stacked = torch.from_numpy(np.stack(arrays)) if arrays else None
    return ImageBatch(ids, stacked, failed)


def worker_init(_: int) -> None:
    """DataLoader worker start: one torch thread (workers only decode; the model needs the cores)."""
    torch.set_num_threads(1)
