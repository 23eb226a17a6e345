"""What near-copy search knows of an image: a perceptual hash and small colour layouts.

Everything is made from the media store's thumbnail (a JPEG of at most 256 px, made once at
import), never from the original, so a signature costs one small decode whatever the size of the
image, and every image of a pool is seen through the same resampling and compression:

- ``phash``: imagehash's 64-bit perceptual hash (DCT of a 32×32 grey image), robust to
  re-encoding and resizing; used to find candidate pairs (:mod:`services.duplicates.matching`).
- ``layout``: the thumbnail averaged down to 16×16 RGB; two copies differ by a couple of grey
  levels on average, two different items by many more (their backdrop, colours, position).
- ``detail``: the thumbnail at 64×64 RGB, made only for the pairs whose layouts are close but
  not equal: a slightly cropped copy is compared after the crop is found (see matching).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

#: The recipe of a stored signature; a signature of another version is made again.
SIGNATURE_VERSION = 1
LAYOUT_SIDE = 16
DETAIL_SIDE = 64
LAYOUT_BYTES = LAYOUT_SIDE * LAYOUT_SIDE * 3


@dataclass(frozen=True)
class Signature:
    """One image's hash (64 bits) and layout (``LAYOUT_SIDE``² RGB, uint8)."""

    phash: int
    layout: np.ndarray

    def phash_hex(self) -> str:
        return f"{self.phash:016x}"

    def layout_bytes(self) -> bytes:
        return np.ascontiguousarray(self.layout, dtype=np.uint8).tobytes()


def _rgb(source: Path | bytes) -> Image.Image:
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def phash_of(image: Image.Image) -> int:
    """imagehash's perceptual hash of ``image`` as a 64-bit integer (row-major bits, first bit highest)."""
    bits = imagehash.phash(image).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def resampled(image: Image.Image, side: int) -> np.ndarray:
    """``image`` averaged down (box filter) to ``side``² RGB, float32 in 0-255."""
    return np.asarray(image.resize((side, side), Image.Resampling.BOX), dtype=np.float32)


def signature_of(thumbnail: Path | bytes) -> Signature:
    """The signature of one image, from its thumbnail (a path or the JPEG bytes).

    Raises:
        OSError: the thumbnail cannot be read or decoded (PIL's errors are OSError or ValueError).
        ValueError: likewise.
    """
    image = _rgb(thumbnail)
    layout = np.clip(np.rint(resampled(image, LAYOUT_SIDE)), 0, 255).astype(np.uint8)
    return Signature(phash_of(image), layout)


def detail_of(thumbnail: Path | bytes) -> np.ndarray:
    """The thumbnail at ``DETAIL_SIDE``² RGB (uint8), for the crop search of a pair."""
    return np.clip(np.rint(resampled(_rgb(thumbnail), DETAIL_SIDE)), 0, 255).astype(np.uint8)


def layout_from_bytes(data: bytes) -> np.ndarray:
    """A stored layout back as ``LAYOUT_SIDE``² RGB uint8.

    Raises:
        ValueError: the bytes are not one layout.
    """
    if len(data) != LAYOUT_BYTES:
        raise ValueError(f"a layout has {LAYOUT_BYTES} bytes, not {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(LAYOUT_SIDE, LAYOUT_SIDE, 3)
