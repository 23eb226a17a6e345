"""Copies planted in the demo catalogue: the same product uploaded again, as catalogues do.

Some items are copies of another item (the original): the same record (title, text, attributes)
under their own id, with an image that is an exact byte copy, a re-encoded JPEG, a resized one,
or a slightly cropped one (1-3 % off each side). Each original has one to three copies. Every
copy is a line of ``truth.jsonl``::

    {"kind": "duplicate", "item_id": "it000812", "original_id": "it000042",
     "transform": "exact" | "jpeg" | "resize" | "crop", "detail": {...}}

Copies are drawn from a generator of their own (seeded from the demo's seed), so planting them
does not move any other draw of the demo; they are chosen before the queries are planned, so a
copy of a positive is a true positive too (and often a planted false negative).
"""

from __future__ import annotations

import io
import json
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from demo.images import RenderJob

__all__ = [
    "COPY_GROUP_SHARE",
    "TRANSFORMS",
    "PlantedCopy",
    "apply_copies",
    "copy_truth",
    "plan_copies",
    "write_copies",
]

#: Originals with copies, as a share of the catalogue (each has 1-3 copies: ~1.8 % of items are copies).
COPY_GROUP_SHARE = 0.012
TRANSFORMS = ("exact", "jpeg", "resize", "crop")
_COPIES_PER_ORIGINAL = ((1, 0.6), (2, 0.3), (3, 0.1))
_RESIZE_SCALES = (0.6, 0.75, 1.25, 1.5)


@dataclass(frozen=True)
class PlantedCopy:
    """Item ``copy`` (an index into the catalogue) shows item ``original``'s image, transformed."""

    copy: int
    original: int
    transform: str
    detail: dict[str, Any] = field(default_factory=dict)


def plan_copies(n_items: int, seed: int) -> list[PlantedCopy]:
    """Which items are copies of which, and how each image is changed, sorted by copy."""
    rng = random.Random(f"qrels-demo-duplicates:{seed}")
    n_originals = max(1, round(n_items * COPY_GROUP_SHARE))
    sizes = rng.choices(
        [n for n, _ in _COPIES_PER_ORIGINAL], [w for _, w in _COPIES_PER_ORIGINAL], k=n_originals
    )
    chosen = rng.sample(range(n_items), n_originals + sum(sizes))
    originals, copies = chosen[:n_originals], iter(chosen[n_originals:])
    transforms = [TRANSFORMS[n % len(TRANSFORMS)] for n in range(sum(sizes))]
    rng.shuffle(transforms)
    kinds = iter(transforms)
    planted = []
    for original, size in zip(originals, sizes, strict=True):
        for _ in range(size):
            transform = next(kinds)
            planted.append(PlantedCopy(next(copies), original, transform, _detail(transform, rng)))
    return sorted(planted, key=lambda c: c.copy)


def _detail(transform: str, rng: random.Random) -> dict[str, Any]:
    if transform == "jpeg":
        return {"quality": rng.randint(35, 60)}
    if transform == "resize":
        return {"scale": rng.choice(_RESIZE_SCALES), "quality": rng.randint(80, 92)}
    if transform == "crop":
        sides = ("left", "top", "right", "bottom")
        return {side: round(rng.uniform(0.01, 0.03), 4) for side in sides} | {"quality": 90}
    return {}


def apply_copies(
    copies: Sequence[PlantedCopy],
    items: list[dict[str, str]],
    item_lines: list[str],
    jobs: list[RenderJob],
    dumps: Callable[[Any], str],
) -> list[RenderJob]:
    """Give each copy its original's record (under its own id and image) in place; return the
    render jobs without the copies (their images are written by :func:`write_copies`)."""
    for c in copies:
        record = json.loads(item_lines[c.original])
        own = json.loads(item_lines[c.copy])
        items[c.copy] = items[c.original]
        item_lines[c.copy] = dumps({**record, "id": own["id"], "image": own["image"]})
    skip = {c.copy for c in copies}
    return [job for n, job in enumerate(jobs) if n not in skip]


def write_copies(images_dir: Path, item_ids: Sequence[str], copies: Sequence[PlantedCopy]) -> None:
    """Write each copy's image from its original's (which must be written already)."""
    for c in copies:
        source = images_dir / f"{item_ids[c.original]}.jpg"
        target = images_dir / f"{item_ids[c.copy]}.jpg"
        if c.transform == "exact":
            shutil.copyfile(source, target)
            continue
        with Image.open(source) as im:
            image = im.convert("RGB")
        d = c.detail
        if c.transform == "resize":
            w, h = image.size
            image = image.resize((round(w * d["scale"]), round(h * d["scale"])), Image.Resampling.LANCZOS)
        elif c.transform == "crop":
            w, h = image.size
            box = (
                round(w * d["left"]),
                round(h * d["top"]),
                w - round(w * d["right"]),
                h - round(h * d["bottom"]),
            )
            image = image.crop(box)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=d["quality"], optimize=False)
        target.write_bytes(out.getvalue())


def copy_truth(copies: Sequence[PlantedCopy], item_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The ``truth.jsonl`` rows of the planted copies, sorted by copy id."""
    return [
        {
            "kind": "duplicate",
            "item_id": item_ids[c.copy],
            "original_id": item_ids[c.original],
            "transform": c.transform,
            "detail": c.detail,
        }
        for c in copies
    ]
