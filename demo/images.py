"""Item images of the demo catalogue: a product silhouette filled with its colour and pattern.

An image shows an item's VISUAL attributes only (type, colour, pattern; never text). Images are
a pure function of (attributes, seed, size), and are the same whether rendered in this process or
in a pool of worker processes.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from demo.vocabulary import COLOURS, PATTERNS

__all__ = ["IMAGE_SIZE", "JPEG_QUALITY", "RenderJob", "render_images", "render_item_image"]

logger = logging.getLogger(__name__)

#: Default width and height of an item image, in pixels.
IMAGE_SIZE = 192
#: JPEG quality of the written images.
JPEG_QUALITY = 90
#: An image to write: ``(path, attributes, seed)``.
RenderJob = tuple[str, dict[str, str], int]

_IN_PROCESS_BELOW = 2000

# Silhouettes in unit coordinates (x right, y down), drawn white on black to make a mask.
_Shape = tuple[Any, ...]
_SHAPES: dict[str, tuple[_Shape, ...]] = {
    "top": (
        (
            "polygon",
            (
                (0.38, 0.08),
                (0.16, 0.16),
                (0.02, 0.42),
                (0.15, 0.50),
                (0.25, 0.38),
                (0.25, 0.95),
                (0.75, 0.95),
                (0.75, 0.38),
                (0.85, 0.50),
                (0.98, 0.42),
                (0.84, 0.16),
                (0.62, 0.08),
                (0.50, 0.18),
            ),
        ),
    ),
    "dress": (
        (
            "polygon",
            (
                (0.37, 0.03),
                (0.42, 0.03),
                (0.45, 0.16),
                (0.55, 0.16),
                (0.58, 0.03),
                (0.63, 0.03),
                (0.65, 0.30),
                (0.60, 0.44),
                (0.90, 0.97),
                (0.10, 0.97),
                (0.40, 0.44),
                (0.35, 0.30),
            ),
        ),
    ),
    "shoe": (
        (
            "polygon",
            (
                (0.04, 0.52),
                (0.10, 0.36),
                (0.30, 0.36),
                (0.44, 0.18),
                (0.62, 0.18),
                (0.66, 0.44),
                (0.88, 0.54),
                (0.97, 0.68),
                (0.95, 0.80),
                (0.04, 0.80),
            ),
        ),
    ),
    "bag": (
        ("polygon", ((0.12, 0.36), (0.88, 0.36), (0.96, 0.96), (0.04, 0.96))),
        ("arc", (0.27, 0.05, 0.73, 0.66), 180, 360, 0.07),
    ),
    "chair": (
        ("rectangle", (0.24, 0.03, 0.76, 0.50)),
        ("rectangle", (0.16, 0.48, 0.84, 0.62)),
        ("rectangle", (0.19, 0.60, 0.29, 0.97)),
        ("rectangle", (0.71, 0.60, 0.81, 0.97)),
    ),
    "lamp": (
        ("polygon", ((0.30, 0.04), (0.70, 0.04), (0.88, 0.44), (0.12, 0.44))),
        ("rectangle", (0.45, 0.42, 0.55, 0.86)),
        ("ellipse", (0.22, 0.80, 0.78, 0.97)),
    ),
    "hat": (("rounded", (0.26, 0.16, 0.74, 0.72), 0.12), ("ellipse", (0.02, 0.58, 0.98, 0.84))),
}
_SCALES = (0.70, 0.74, 0.78, 0.82, 0.86)
_OUTLINE_RGB = (55, 55, 55)
_SUPERSAMPLE = 3


@functools.lru_cache(maxsize=256)
def _silhouette(product_type: str, extent: int) -> tuple[Image.Image, Image.Image]:
    """Return the (mask, outline mask) of a product type drawn in an ``extent`` square."""
    big = extent * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)

    def px(value: float) -> float:
        return value * (big - 1)

    for shape in _SHAPES[product_type]:
        kind = shape[0]
        if kind == "polygon":
            draw.polygon([(px(x), px(y)) for x, y in shape[1]], fill=255)
        elif kind == "rectangle":
            draw.rectangle([px(v) for v in shape[1]], fill=255)
        elif kind == "ellipse":
            draw.ellipse([px(v) for v in shape[1]], fill=255)
        elif kind == "rounded":
            draw.rounded_rectangle([px(v) for v in shape[1]], radius=px(shape[2]), fill=255)
        elif kind == "arc":
            draw.arc(
                [px(v) for v in shape[1]], shape[2], shape[3], fill=255, width=max(1, round(px(shape[4])))
            )
        else:  # pragma: no cover - table above is fixed
            raise AssertionError(kind)
    mask = canvas.resize((extent, extent), Image.Resampling.BOX)
    outline = mask.filter(ImageFilter.MaxFilter(5))
    return mask, outline


def _pattern_period(size: int) -> int:
    return max(6, round(size / 12))


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


@functools.lru_cache(maxsize=512)
def _fill(colour: str, pattern: str, size: int, variant: int) -> Image.Image:
    """Return a (size + period)² RGB texture of ``colour`` in ``pattern`` (tileable by period)."""
    period = _pattern_period(size)
    n = size + period
    main = COLOURS[colour]
    light = sum(main) / 3 > 150
    second = (40, 40, 40) if light else (250, 250, 250)
    yy, xx = np.mgrid[0:n, 0:n]
    if pattern == "solid":
        marks = np.zeros((n, n), dtype=bool)
    elif pattern == "striped":
        coord = (yy, xx, xx + yy)[variant]
        marks = (coord % period) < max(2, round(period * 0.3))
    elif pattern == "dotted":
        half = period / 2
        dx = (xx % period) - half + 0.5
        dy = (yy % period) - half + 0.5
        marks = dx * dx + dy * dy <= (period * 0.28) ** 2
    elif pattern == "checked":
        cell = max(3, period // 2)
        marks = ((xx // cell) + (yy // cell)) % 2 == 1
        second = _blend(main, second, 0.4)
    else:
        raise ValueError(f"unknown pattern {pattern!r}; expected one of {PATTERNS}")
    rgb = np.where(marks[..., None], np.array(second, dtype=np.uint8), np.array(main, dtype=np.uint8))
    return Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")


def render_item_image(attributes: Mapping[str, str], *, seed: int, size: int = IMAGE_SIZE) -> Image.Image:
    """Draw an item: its type's silhouette filled with its colour and pattern, on a plain backdrop.

    The image carries the VISUAL attributes only (no text). A small jitter of position, scale,
    backdrop tint, stripe direction and pattern phase is drawn from ``seed``, so two items with
    the same attributes get different images, and the same (attributes, seed, size) always gives
    the same pixels.

    Args:
        attributes: the item's attributes (``type``, ``colour``, ``pattern`` are used).
        seed: the per-item seed for the jitter.
        size: the width and height in pixels (at least 32).

    Returns:
        An RGB image of ``size`` × ``size`` pixels.

    Raises:
        ValueError: ``size`` is below 32, or an attribute value is unknown.
    """
    if size < 32:
        raise ValueError(f"image size must be at least 32 pixels, not {size}")
    product_type, colour, pattern = attributes["type"], attributes["colour"], attributes["pattern"]
    if product_type not in _SHAPES or colour not in COLOURS:
        raise ValueError(f"unknown type or colour in {dict(attributes)!r}")
    rng = random.Random(seed)
    extent = round(size * rng.choice(_SCALES))
    margin = size - extent
    x, y = rng.randint(0, margin), rng.randint(0, margin)
    level = rng.randint(196, 236)
    backdrop = tuple(min(255, max(0, level + rng.randint(-9, 9))) for _ in range(3))
    variant = rng.randrange(3) if pattern == "striped" else 0
    period = _pattern_period(size)
    ox, oy = rng.randrange(period), rng.randrange(period)

    image = Image.new("RGB", (size, size), backdrop)  # type: ignore[arg-type]
    mask, outline = _silhouette(product_type, extent)
    box = (x, y, x + extent, y + extent)
    image.paste(_OUTLINE_RGB, box, outline)
    texture = _fill(colour, pattern, size, variant).crop((ox, oy, ox + extent, oy + extent))
    image.paste(texture, box, mask)
    return image


def _render_batch(jobs: Sequence[RenderJob], image_size: int) -> int:
    """Render and write a batch of ``(path, attributes, seed)``; returns how many were written."""
    for path, attributes, seed in jobs:
        render_item_image(attributes, seed=seed, size=image_size).save(
            path, "JPEG", quality=JPEG_QUALITY, optimize=False
        )
    return len(jobs)


def render_images(jobs: Sequence[RenderJob], image_size: int, workers: int) -> None:
    """Render every job's image and write it as a JPEG (quality :data:`JPEG_QUALITY`).

    Args:
        jobs: ``(path, attributes, seed)`` per image.
        image_size: width and height in pixels.
        workers: processes to render in; with 1, or fewer than 2000 jobs, they render in this
            process. The files do not depend on it.
    """
    if workers == 1 or len(jobs) < _IN_PROCESS_BELOW:
        _render_batch(jobs, image_size)
        return
    chunk = max(200, min(2000, math.ceil(len(jobs) / (workers * 8))))
    batches = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        done = 0
        for written in pool.map(_render_batch, batches, [image_size] * len(batches)):
            done += written
            logger.debug("rendered %d/%d images", done, len(jobs))
