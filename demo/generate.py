"""Deterministic synthetic product catalogue with planted truth, written as a native bundle.

The catalogue follows the "dual evidence" style: every item has VISUAL attributes (``colour``,
``pattern``) that appear only in its image, and TEXT attributes (``material``, ``brand``,
``size``) that appear only in its title and description. Queries ask for a product type plus at
least one visual and one text attribute, so answering them needs both modalities.

On top of the exact answers the generator plants errors a real pipeline would make, and records
them in ``truth.jsonl`` (which the importer ignores):

* false negatives: true positives left out of ``qrels.tsv``;
* wrong positives: items in ``qrels.tsv`` that violate exactly one condition;
* bad queries: ``contradictory`` (two values of one attribute) or ``unanswerable`` (a
  combination no item has), whose qrels still carry one or two near misses;
* query variants: pairs of queries with identical conditions, one template-``generated`` and one
  casual ``human`` phrasing, sharing a ``group`` id.

Bundle layout written by :func:`generate_demo`::

    items.jsonl    {"id", "title", "text", "image", "category", "language", "attributes"}
    queries.jsonl  {"id", "text", "category", "language", "source", "group"}
    qrels.tsv      query-id<TAB>corpus-id<TAB>score   (score is always 1)
    images/        <item id>.jpg, JPEG quality 90
    truth.jsonl    one line per query, see :func:`generate_demo`

Everything is a pure function of the arguments: the same arguments give byte-identical files,
whatever the number of worker processes.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from services.core.errors import DemoError

__all__ = [
    "ATTRIBUTES",
    "BRANDS",
    "COLOURS",
    "MATERIALS",
    "MAX_POSITIVES",
    "PATTERNS",
    "PRODUCT_TYPES",
    "SIZES",
    "TEXT_ATTRIBUTES",
    "VISUAL_ATTRIBUTES",
    "DemoSummary",
    "generate_demo",
    "item_text",
    "render_item_image",
    "sample_item_attributes",
    "visual_caption",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

PRODUCT_TYPES: tuple[str, ...] = ("top", "dress", "shoe", "bag", "chair", "lamp", "hat")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 30, 35),
    "blue": (30, 75, 215),
    "green": (30, 155, 60),
    "yellow": (245, 210, 30),
    "black": (25, 25, 25),
    "white": (248, 248, 248),
    "purple": (125, 45, 165),
    "orange": (245, 125, 20),
    "pink": (245, 145, 195),
    "grey": (125, 125, 125),
}

PATTERNS: tuple[str, ...] = ("solid", "striped", "dotted", "checked")

MATERIALS: dict[str, tuple[str, ...]] = {
    "top": ("cotton", "wool", "linen", "denim", "silk", "polyester"),
    "dress": ("cotton", "linen", "silk", "wool", "velvet", "chiffon"),
    "shoe": ("leather", "suede", "canvas", "rubber", "mesh"),
    "bag": ("leather", "canvas", "nylon", "suede", "straw"),
    "chair": ("oak", "metal", "plastic", "velvet", "rattan", "walnut"),
    "lamp": ("brass", "ceramic", "glass", "metal", "rattan"),
    "hat": ("wool", "straw", "felt", "cotton", "leather"),
}

BRANDS: tuple[str, ...] = ("Nordwind", "Valora", "Kestrel", "Mirabel", "Halden", "Osmund", "Brisa", "Lumio")

_CLOTHING_SIZES = ("XS", "S", "M", "L", "XL")
_SHOE_SIZES = ("EU 37", "EU 38", "EU 39", "EU 40", "EU 41", "EU 42", "EU 43", "EU 44")
_WORD_SIZES = ("small", "medium", "large")

SIZES: dict[str, tuple[str, ...]] = {
    "top": _CLOTHING_SIZES,
    "dress": _CLOTHING_SIZES,
    "shoe": _SHOE_SIZES,
    "bag": _WORD_SIZES,
    "chair": _WORD_SIZES,
    "lamp": _WORD_SIZES,
    "hat": ("S", "M", "L"),
}

VISUAL_ATTRIBUTES: tuple[str, ...] = ("colour", "pattern")
TEXT_ATTRIBUTES: tuple[str, ...] = ("material", "brand", "size")
#: Every attribute, in the order used for ``attributes`` and ``conditions`` objects.
ATTRIBUTES: tuple[str, ...] = ("type", *VISUAL_ATTRIBUTES, *TEXT_ATTRIBUTES)

#: A target's conditions are tightened until at most this many items satisfy them.
MAX_POSITIVES = 15

_GERMAN_SHARE = 0.15
_BAD_SHARE = 0.08
_GROUP_SHARE = 0.20  # of targets
_FALSE_NEGATIVE_SHARE = 0.40  # of good queries
_WRONG_POSITIVE_SHARE = 0.25  # of good queries
_MIN_ITEMS = 50
_JPEG_QUALITY = 90
_IN_PROCESS_BELOW = 2000
_OUTPUT_FILES = ("items.jsonl", "queries.jsonl", "qrels.tsv", "truth.jsonl")

# English wording --------------------------------------------------------------------------

_EN_NOUN = {t: t for t in PRODUCT_TYPES}
_EN_PLURAL = {
    "top": "tops",
    "dress": "dresses",
    "shoe": "shoes",
    "bag": "bags",
    "chair": "chairs",
    "lamp": "lamps",
    "hat": "hats",
}
_EN_MODELS = ("Aria", "Vega", "Milo", "Juno", "Orion", "Tessa", "Luca", "Nova", "Atlas", "Elio")
_EN_FEATURES: dict[str, tuple[str, ...]] = {
    "top": (
        "Relaxed fit with short sleeves.",
        "Easy to layer.",
        "Cut for everyday wear.",
        "Soft hand feel and a regular fit.",
    ),
    "dress": (
        "Knee-length with a fitted waist.",
        "Flowing skirt and slim straps.",
        "Works for the office and the evening.",
        "Midi length with a side zip.",
    ),
    "shoe": (
        "Cushioned insole for all-day comfort.",
        "Flexible sole with good grip.",
        "Low profile, lace-up closure.",
        "Padded collar and a roomy toe box.",
    ),
    "bag": (
        "Roomy main compartment with an inner pocket.",
        "Sturdy top handle and a zip closure.",
        "Fits a laptop up to 14 inches.",
        "Detachable shoulder strap.",
    ),
    "chair": (
        "Sturdy frame, easy to assemble.",
        "Comfortable seat height for dining tables.",
        "Stackable for small spaces.",
        "Backrest shaped for long sitting.",
    ),
    "lamp": (
        "Warm light, E27 socket.",
        "Dimmable, cable with foot switch.",
        "Ideal for bedside tables.",
        "Shade diffuses light evenly.",
    ),
    "hat": (
        "Wide brim, packable.",
        "Inner band for a snug fit.",
        "Light enough for long walks.",
        "Classic crown shape.",
    ),
}
_EN_CARE = ("Care instructions on the label.", "Ships within two days.", "Thirty-day returns.", "")

# German wording ---------------------------------------------------------------------------

# type -> (singular, accusative indefinite article, plural)
_DE_NOUN: dict[str, tuple[str, str, str]] = {
    "top": ("Oberteil", "ein", "Oberteile"),
    "dress": ("Kleid", "ein", "Kleider"),
    "shoe": ("Schuh", "einen", "Schuhe"),
    "bag": ("Tasche", "eine", "Taschen"),
    "chair": ("Stuhl", "einen", "Stühle"),
    "lamp": ("Lampe", "eine", "Lampen"),
    "hat": ("Hut", "einen", "Hüte"),
}
_DE_COLOUR = {
    "red": "Rot",
    "blue": "Blau",
    "green": "Grün",
    "yellow": "Gelb",
    "black": "Schwarz",
    "white": "Weiß",
    "purple": "Lila",
    "orange": "Orange",
    "pink": "Rosa",
    "grey": "Grau",
}
_DE_PATTERN = {"solid": "einfarbig", "striped": "gestreift", "dotted": "gepunktet", "checked": "kariert"}
_DE_PATTERN_CASUAL = {
    "solid": "ohne Muster",
    "striped": "mit Streifen",
    "dotted": "mit Punkten",
    "checked": "kariert",
}
_DE_MATERIAL = {
    "cotton": "Baumwolle",
    "wool": "Wolle",
    "linen": "Leinen",
    "denim": "Jeansstoff",
    "silk": "Seide",
    "polyester": "Polyester",
    "velvet": "Samt",
    "chiffon": "Chiffon",
    "leather": "Leder",
    "suede": "Wildleder",
    "canvas": "Segeltuch",
    "rubber": "Gummi",
    "mesh": "Netzstoff",
    "nylon": "Nylon",
    "straw": "Stroh",
    "oak": "Eiche",
    "metal": "Metall",
    "plastic": "Kunststoff",
    "rattan": "Rattan",
    "walnut": "Nussbaum",
    "brass": "Messing",
    "ceramic": "Keramik",
    "glass": "Glas",
    "felt": "Filz",
}
_DE_WORD_SIZE = {"small": "klein", "medium": "mittel", "large": "groß"}
_DE_FEATURES: dict[str, tuple[str, ...]] = {
    "top": ("Lockere Passform mit kurzen Ärmeln.", "Gut zum Kombinieren.", "Für jeden Tag geschnitten."),
    "dress": (
        "Knielang mit tailliertem Schnitt.",
        "Schwingender Rock und schmale Träger.",
        "Für Büro und Abend.",
    ),
    "shoe": (
        "Gepolsterte Innensohle für den ganzen Tag.",
        "Flexible Sohle mit gutem Halt.",
        "Flacher Schnitt mit Schnürung.",
    ),
    "bag": (
        "Geräumiges Hauptfach mit Innentasche.",
        "Stabiler Henkel und Reißverschluss.",
        "Abnehmbarer Schulterriemen.",
    ),
    "chair": (
        "Stabiler Rahmen, einfach aufzubauen.",
        "Bequeme Sitzhöhe für Esstische.",
        "Stapelbar für kleine Räume.",
    ),
    "lamp": ("Warmes Licht, E27-Fassung.", "Dimmbar, Kabel mit Fußschalter.", "Ideal für den Nachttisch."),
    "hat": ("Breite Krempe, faltbar.", "Innenband für guten Sitz.", "Klassische Form."),
}
_DE_CARE = ("Pflegehinweise auf dem Etikett.", "Versand in zwei Tagen.", "30 Tage Rückgaberecht.", "")

# --------------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------------


def sample_item_attributes(rng: random.Random) -> dict[str, str]:
    """Draw one item's attributes uniformly from the vocabulary.

    Args:
        rng: the random source; exactly six draws are taken from it.

    Returns:
        ``{"type", "colour", "pattern", "material", "brand", "size"}``, in that order; material
        and size are drawn from the lists for the drawn type.
    """
    product_type = rng.choice(PRODUCT_TYPES)
    return {
        "type": product_type,
        "colour": rng.choice(tuple(COLOURS)),
        "pattern": rng.choice(PATTERNS),
        "material": rng.choice(MATERIALS[product_type]),
        "brand": rng.choice(BRANDS),
        "size": rng.choice(SIZES[product_type]),
    }


def _a_an(phrase: str) -> str:
    """Return the English indefinite article for ``phrase``."""
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def visual_caption(attributes: Mapping[str, str]) -> str:
    """Describe what an item's image shows (colour, pattern, type), for training an image model.

    Args:
        attributes: an item's attributes; only ``type``, ``colour`` and ``pattern`` are used.

    Returns:
        e.g. ``"a photo of a red striped dress"`` or ``"a photo of an orange solid hat"``.
    """
    phrase = f"{attributes['colour']} {attributes['pattern']} {_EN_NOUN[attributes['type']]}"
    return f"a photo of {_a_an(phrase)} {phrase}"


def _en_size(product_type: str, size: str) -> str:
    return f"in {size} size" if size in _WORD_SIZES else f"in size {size}"


def _de_size(size: str) -> str:
    return f"Größe {_DE_WORD_SIZE.get(size, size)}"


def item_text(attributes: Mapping[str, str], language: str, rng: random.Random) -> tuple[str, str]:
    """Write an item's title and description from its TEXT attributes only.

    Colour and pattern are never mentioned: they are visible only in the image.

    Args:
        attributes: the item's attributes (``type``, ``material``, ``brand``, ``size`` are used).
        language: ``"en"`` or ``"de"``.
        rng: the random source for the choice of model name and wording.

    Returns:
        ``(title, description)``.

    Raises:
        ValueError: ``language`` is neither ``"en"`` nor ``"de"``.
    """
    product_type = attributes["type"]
    material, brand, size = attributes["material"], attributes["brand"], attributes["size"]
    model = rng.choice(_EN_MODELS)
    if language == "en":
        noun = _EN_NOUN[product_type]
        title = f"{brand} {model} {material} {noun}"
        features = rng.sample(_EN_FEATURES[product_type], 2)
        size_text = f"Size: {size}." if size in _WORD_SIZES else f"Size {size}."
        opening = rng.choice(
            (
                f"{_a_an(material).capitalize()} {material} {noun} by {brand}.",
                f"The {model} {noun} from {brand}, made of {material}.",
                f"{brand} presents the {model}: {_a_an(material)} {material} {noun}.",
            )
        )
        parts = [opening, *features, size_text, rng.choice(_EN_CARE)]
    elif language == "de":
        noun = _DE_NOUN[product_type][0]
        mat = _DE_MATERIAL[material]
        title = f"{brand} {model} {noun} aus {mat}"
        features = rng.sample(_DE_FEATURES[product_type], 2)
        opening = rng.choice(
            (
                f"{noun} aus {mat} von {brand}.",
                f"Das Modell {model} von {brand}, gefertigt aus {mat}.",
            )
        )
        parts = [opening, *features, f"{_de_size(size)}.", rng.choice(_DE_CARE)]
    else:
        raise ValueError(f"language must be 'en' or 'de', not {language!r}")
    return title, " ".join(p for p in parts if p)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

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


def render_item_image(attributes: Mapping[str, str], *, seed: int, size: int = 192) -> Image.Image:
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


def _render_batch(jobs: Sequence[tuple[str, dict[str, str], int]], image_size: int) -> int:
    """Render and write a batch of ``(path, attributes, seed)``; returns how many were written."""
    for path, attributes, seed in jobs:
        render_item_image(attributes, seed=seed, size=image_size).save(
            path, "JPEG", quality=_JPEG_QUALITY, optimize=False
        )
    return len(jobs)


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------

Conditions = dict[str, Any]  # attribute -> value (a list of two values for "contradictory")


def _ordered(conditions: Mapping[str, Any]) -> Conditions:
    return {a: conditions[a] for a in ATTRIBUTES if a in conditions}


def _key(conditions: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((a, tuple(v) if isinstance(v, list) else v) for a, v in _ordered(conditions).items())


class _Index:
    """Item indices by (attribute, value), for fast conjunctive look-ups."""

    def __init__(self, items: Sequence[Mapping[str, str]]) -> None:
        self._sets: dict[tuple[str, str], set[int]] = {}
        for i, attrs in enumerate(items):
            for attribute in ATTRIBUTES:
                self._sets.setdefault((attribute, attrs[attribute]), set()).add(i)

    def match(self, conditions: Mapping[str, Any]) -> set[int]:
        """Indices of the items satisfying every condition (list value: all of its values)."""
        sets: list[set[int]] = []
        for attribute, value in conditions.items():
            for v in value if isinstance(value, list) else (value,):
                sets.append(self._sets.get((attribute, v), set()))
        if not sets:
            raise ValueError("no conditions")
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])

    def near_misses(self, conditions: Mapping[str, Any], attribute: str) -> set[int]:
        """Items satisfying every condition except ``attribute`` (which they violate)."""
        rest = {a: v for a, v in conditions.items() if a != attribute}
        return self.match(rest) - self.match(conditions)


def _en_value(attribute: str, value: Any) -> str:
    if isinstance(value, list):
        return " and ".join(value)
    return str(value)


def _en_generated(conditions: Conditions, rng: random.Random) -> str:
    product_type = conditions["type"]
    brand_first = "brand" in conditions and rng.random() < 0.5
    colour_with_material = "colour" in conditions and "material" in conditions and rng.random() < 0.3
    words: list[str] = []
    if brand_first:
        words.append(conditions["brand"])
    if "colour" in conditions and not colour_with_material:
        words.append(_en_value("colour", conditions["colour"]))
    if "pattern" in conditions:
        words.append(conditions["pattern"])
    plural = product_type == "shoe"
    words.append(_EN_PLURAL[product_type] if plural else _EN_NOUN[product_type])
    phrase = " ".join(words)
    clauses: list[str] = []
    if "material" in conditions:
        material = conditions["material"]
        if colour_with_material:
            clauses.append(f"in {_en_value('colour', conditions['colour'])} {material}")
        else:
            clauses.append(rng.choice((f"made of {material}", f"in {material}")))
    if "brand" in conditions and not brand_first:
        clauses.append(rng.choice((f"by {conditions['brand']}", f"from {conditions['brand']}")))
    if "size" in conditions:
        clauses.append(_en_size(product_type, conditions["size"]))
    opener = rng.choice(("Find", "Show me", "I need", "I am looking for", "Search for"))
    article = "" if plural else _a_an(phrase) + " "
    return " ".join([f"{opener} {article}{phrase}", *clauses])


_EN_CASUAL_PATTERN = {
    "solid": "plain with no pattern",
    "striped": "with stripes",
    "dotted": "with polka dots",
    "checked": "checkered",
}


def _en_human(conditions: Conditions, rng: random.Random) -> str:
    product_type = conditions["type"]
    fragments: list[str] = []
    if "colour" in conditions:
        fragments.append(rng.choice(("in {}", "{} one", "preferably {}")).format(conditions["colour"]))
    if "pattern" in conditions:
        fragments.append(_EN_CASUAL_PATTERN[conditions["pattern"]])
    if "material" in conditions:
        fragments.append(
            rng.choice(("{} if possible", "made from {}", "the {} kind")).format(conditions["material"])
        )
    if "brand" in conditions:
        fragments.append(rng.choice(("from {}", "{} brand", "something by {}")).format(conditions["brand"]))
    if "size" in conditions:
        size = conditions["size"]
        fragments.append(f"a {size} one" if size in _WORD_SIZES else f"size {size}")
    rng.shuffle(fragments)
    noun = "shoes" if product_type == "shoe" else f"{_a_an(product_type)} {_EN_NOUN[product_type]}"
    opener = rng.choice(("hi, looking for", "need", "anyone got", "hey do you have", "searching for"))
    closer = rng.choice(("", " thx", " please", "?", " :)"))
    return f"{opener} {noun}, {', '.join(fragments)}{closer}"


def _de_generated(conditions: Conditions, rng: random.Random) -> str:
    product_type = conditions["type"]
    singular, article, plural = _DE_NOUN[product_type]
    parts: list[str] = []
    if "colour" in conditions:
        value = conditions["colour"]
        colours = value if isinstance(value, list) else [value]
        parts.append("in " + " und ".join(_DE_COLOUR[c] for c in colours))
    if "pattern" in conditions:
        parts.append(_DE_PATTERN[conditions["pattern"]])
    if "material" in conditions:
        parts.append(f"aus {_DE_MATERIAL[conditions['material']]}")
    if "brand" in conditions:
        parts.append(f"von {conditions['brand']}")
    if "size" in conditions:
        parts.append(_de_size(conditions["size"]))
    head = rng.choice((f"Ich suche {article} {singular}", f"Gesucht: {singular}", f"Zeige mir {plural}"))
    return ", ".join([head, *parts])


def _de_human(conditions: Conditions, rng: random.Random) -> str:
    fragments: list[str] = []
    if "colour" in conditions:
        fragments.append(rng.choice(("am liebsten in {}", "in {}")).format(_DE_COLOUR[conditions["colour"]]))
    if "pattern" in conditions:
        fragments.append(_DE_PATTERN_CASUAL[conditions["pattern"]])
    if "material" in conditions:
        fragments.append(f"aus {_DE_MATERIAL[conditions['material']]}")
    if "brand" in conditions:
        fragments.append(rng.choice(("von {}", "gern von {}")).format(conditions["brand"]))
    if "size" in conditions:
        fragments.append(_de_size(conditions["size"]))
    rng.shuffle(fragments)
    plural = _DE_NOUN[conditions["type"]][2]
    opener = rng.choice(("hallo, habt ihr", "gibt es", "hat jemand"))
    closer = rng.choice(("", " danke", " bitte", "!"))
    return f"{opener} {plural}? {', '.join(fragments)}{closer}"


def _query_text(conditions: Conditions, language: str, source: str, rng: random.Random) -> str:
    if language == "de":
        return _de_human(conditions, rng) if source == "human" else _de_generated(conditions, rng)
    return _en_human(conditions, rng) if source == "human" else _en_generated(conditions, rng)


@dataclass
class _Query:
    """A query being built; ``ids`` are item indices until the files are written."""

    conditions: Conditions
    target: int
    language: str
    source: str = "generated"
    group: str | None = None
    bad: str | None = None
    true_positives: tuple[int, ...] = ()
    false_negatives: tuple[int, ...] = ()
    wrong_positives: dict[int, str] | None = None
    text: str = ""

    def labelled(self) -> list[int]:
        dropped = set(self.false_negatives)
        kept = [i for i in self.true_positives if i not in dropped]
        return sorted([*kept, *(self.wrong_positives or {})])


class _QueryPlanner:
    """Chooses targets and conditions; every choice comes from one seeded ``random.Random``."""

    def __init__(self, items: Sequence[Mapping[str, str]], rng: random.Random) -> None:
        self.items = items
        self.rng = rng
        self.index = _Index(items)
        self.used_keys: set[tuple[tuple[str, Any], ...]] = set()
        order = list(range(len(items)))
        rng.shuffle(order)
        self._targets = order
        self._next = 0

    def _take_target(self, accept: Any = None) -> int | None:
        """Next unused target in the shuffled order (the first accepted one, skipping others)."""
        for pos in range(self._next, len(self._targets)):
            candidate = self._targets[pos]
            if accept is None or accept(candidate):
                self._targets[self._next], self._targets[pos] = self._targets[pos], self._targets[self._next]
                self._next += 1
                return candidate
        return None

    def good(self) -> tuple[int, Conditions, tuple[int, ...]] | None:
        """A target and its conditions: type + ≥1 visual + ≥1 text, at most MAX_POSITIVES hits."""
        while (target := self._take_target()) is not None:
            attrs = self.items[target]
            chosen = ["type", self.rng.choice(VISUAL_ATTRIBUTES), self.rng.choice(TEXT_ATTRIBUTES)]
            rest = [a for a in ATTRIBUTES if a not in chosen]
            self.rng.shuffle(rest)
            while True:
                conditions = _ordered({a: attrs[a] for a in chosen})
                hits = self.index.match(conditions)
                if (len(hits) <= MAX_POSITIVES and _key(conditions) not in self.used_keys) or not rest:
                    break
                chosen.append(rest.pop())
            if _key(conditions) in self.used_keys:
                continue
            self.used_keys.add(_key(conditions))
            return target, conditions, tuple(sorted(hits))
        return None

    def contradictory(self) -> tuple[int, Conditions, dict[int, str]] | None:
        """Two colours plus "solid": no item can satisfy it; qrels get 1–2 one-colour near misses."""
        while (target := self._take_target(lambda i: self.items[i]["pattern"] == "solid")) is not None:
            attrs = self.items[target]
            other = self.rng.choice([c for c in COLOURS if c != attrs["colour"]])
            text_attribute = self.rng.choice(("material", "brand"))
            conditions = _ordered(
                {
                    "type": attrs["type"],
                    "colour": [attrs["colour"], other],
                    "pattern": "solid",
                    text_attribute: attrs[text_attribute],
                }
            )
            if _key(conditions) in self.used_keys:
                continue
            self.used_keys.add(_key(conditions))
            near = self.index.near_misses(conditions, "colour")
            plausible = sorted(i for i in near if self.items[i]["colour"] in conditions["colour"])
            picked = self.rng.sample(plausible, min(len(plausible), self.rng.choice((1, 2))))
            return target, conditions, {i: "colour" for i in picked}
        return None

    def unanswerable(self) -> tuple[int, Conditions, dict[int, str]] | None:
        """A brand/material combination no item of the type has; qrels get 1–2 near misses."""
        attempts = 0
        while attempts < 200 and (target := self._take_target()) is not None:
            attempts += 1
            attrs = self.items[target]
            materials = [m for m in MATERIALS[attrs["type"]] if m != attrs["material"]]
            self.rng.shuffle(materials)
            found: Conditions | None = None
            # Prefer a type+brand+material that does not exist at all; in big catalogues also pin
            # the visual attributes and the size until the combination is empty.
            for extra in ((), ("pattern",), ("pattern", "size")):
                for material in materials:
                    probe = {"type": attrs["type"], "brand": attrs["brand"], "material": material}
                    probe.update({a: attrs[a] for a in extra})
                    if not extra and self.index.match(probe):
                        continue
                    candidate = _ordered({**probe, "colour": attrs["colour"]})
                    if not self.index.match(candidate) and _key(candidate) not in self.used_keys:
                        found = candidate
                        break
                if found is not None:
                    break
            if found is None:
                self._next -= 1  # give the target back for other slots
                self._targets.append(self._targets.pop(self._next))
                continue
            self.used_keys.add(_key(found))
            near: dict[int, str] = {}
            for attribute in found:
                if attribute != "type":
                    for i in self.index.near_misses(found, attribute):
                        near[i] = attribute
            ordered = sorted(near)
            picked = [target] if target in near else []
            others = [i for i in ordered if i != target]
            if self.rng.random() < 0.5 and others:
                picked.append(self.rng.choice(others))
            if not picked:
                picked = [self.rng.choice(ordered)]
            return target, found, {i: near[i] for i in picked}
        return None


def _plan_queries(items: Sequence[Mapping[str, str]], n_queries: int, rng: random.Random) -> list[_Query]:
    """Build every query line (in output order) with its planted truth."""
    n_bad = round(n_queries * _BAD_SHARE)
    good_lines = n_queries - n_bad
    n_groups = round(good_lines * _GROUP_SHARE / (1 + _GROUP_SHARE))
    n_single = good_lines - 2 * n_groups
    n_contradictory = (n_bad + 1) // 2
    slots = (
        ["single"] * n_single
        + ["group"] * n_groups
        + ["contradictory"] * n_contradictory
        + ["unanswerable"] * (n_bad - n_contradictory)
    )
    rng.shuffle(slots)

    planner = _QueryPlanner(items, rng)
    queries: list[_Query] = []
    group_count = 0
    for slot in slots:
        language = "de" if rng.random() < _GERMAN_SHARE else "en"
        bad: tuple[int, Conditions, dict[int, str]] | None = None
        if slot == "contradictory":
            bad = planner.contradictory() or planner.unanswerable()
        elif slot == "unanswerable":
            bad = planner.unanswerable() or planner.contradictory()
        if bad is not None:
            target, conditions, wrong = bad
            kind = (
                "contradictory" if any(isinstance(v, list) for v in conditions.values()) else "unanswerable"
            )
            queries.append(_Query(conditions, target, language, bad=kind, wrong_positives=wrong))
            continue
        planned = planner.good()
        if planned is None:
            raise DemoError(
                f"could only make {len(queries)} distinct queries from {len(items)} items; "
                "ask for fewer queries or more items"
            )
        target, conditions, hits = planned
        if slot == "group":
            group_count += 1
            group = f"g{group_count:04d}"
            for source in ("generated", "human"):
                queries.append(
                    _Query(conditions, target, language, source=source, group=group, true_positives=hits)
                )
        else:
            queries.append(_Query(conditions, target, language, true_positives=hits))

    # Planted errors on good query lines (each line is planted independently, group members too).
    good = [q for q in queries if q.bad is None]
    eligible = [q for q in good if len(q.true_positives) >= 2]
    for q in rng.sample(eligible, min(len(eligible), round(len(good) * _FALSE_NEGATIVE_SHARE))):
        k = 1 if len(q.true_positives) == 2 else rng.choice((1, 2))
        q.false_negatives = tuple(sorted(rng.sample(q.true_positives, k)))
    wanted = round(len(good) * _WRONG_POSITIVE_SHARE)
    order = list(good)
    rng.shuffle(order)
    for q in order:
        if wanted == 0:
            break
        attributes = [a for a in q.conditions if a != "type"]
        rng.shuffle(attributes)
        for attribute in attributes:
            near = sorted(planner.index.near_misses(q.conditions, attribute))
            if near:
                q.wrong_positives = {rng.choice(near): attribute}
                wanted -= 1
                break
    for q in queries:
        q.text = _query_text(q.conditions, q.language, q.source, rng)
    return queries


# --------------------------------------------------------------------------------------------
# Bundle
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate_demo` wrote.

    Attributes:
        out_dir: the bundle folder.
        n_items: lines in ``items.jsonl`` (and images).
        n_queries: lines in ``queries.jsonl``.
        n_qrels: data rows in ``qrels.tsv``.
        n_false_negatives: true positives left out of the qrels, over all queries.
        n_wrong_positives: qrels rows that violate a condition, over all queries (the planted
            ones on good queries plus the near misses carried by bad queries).
        n_bad_queries: contradictory plus unanswerable queries.
        n_groups: generated/human query pairs.
    """

    out_dir: Path
    n_items: int
    n_queries: int
    n_qrels: int
    n_false_negatives: int
    n_wrong_positives: int
    n_bad_queries: int
    n_groups: int


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"{out_dir} is a file; choose a folder for the demo bundle")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise DemoError(
                f"{out_dir} is not empty; choose an empty or new folder, or pass overwrite=True "
                "to replace the demo files in it"
            )
        for name in _OUTPUT_FILES:
            (out_dir / name).unlink(missing_ok=True)
        if (out_dir / "images").is_dir():
            shutil.rmtree(out_dir / "images")
    (out_dir / "images").mkdir(parents=True, exist_ok=True)


def _render_all(jobs: list[tuple[str, dict[str, str], int]], image_size: int, workers: int) -> None:
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


def _write_files(out_dir: Path, contents: Mapping[str, Iterable[str]]) -> None:
    """Write every file under a temporary name, then rename them all (no half-written files)."""
    temps: list[tuple[Path, Path]] = []
    try:
        for name, lines in contents.items():
            final = out_dir / name
            temp = out_dir / f".{name}.tmp"
            temps.append((temp, final))
            with temp.open("w", encoding="utf-8", newline="\n") as fh:
                for line in lines:
                    fh.write(line)
                    fh.write("\n")
        for temp, final in temps:
            os.replace(temp, final)
    finally:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)


def generate_demo(
    out_dir: Path,
    *,
    n_items: int = 2000,
    n_queries: int = 200,
    seed: int = 0,
    workers: int | None = None,
    overwrite: bool = False,
    image_size: int = 192,
) -> DemoSummary:
    """Generate a demo catalogue with planted truth as a native bundle in ``out_dir``.

    ``truth.jsonl`` has one line per query, in ``queries.jsonl`` order::

        {"query_id": "q0001",
         "target_id": "it000042",                 # the item the query was built from
         "conditions": {"type": "dress", "colour": "red", "material": "silk"},
         "true_positives": [...],                 # items satisfying every condition
         "labelled_positives": [...],             # the ids written to qrels.tsv
         "false_negatives": [...],                # true positives not in qrels.tsv
         "wrong_positives": [...],                # qrels ids violating exactly one condition
         "wrong_positive_violations": {"it000007": "colour"},
         "bad": null | "contradictory" | "unanswerable",
         "source": "generated" | "human",
         "group": null | "g0001"}

    Condition values are strings, except that a contradictory query's contradicted attribute
    holds a list of two values, meaning "must be both" (which no item is). Every id list is
    sorted, and ``labelled_positives`` = (``true_positives`` − ``false_negatives``) ∪
    ``wrong_positives``.

    Args:
        out_dir: the bundle folder; created if missing, must be empty unless ``overwrite``.
        n_items: catalogue size (at least 50).
        n_queries: query lines to write, group variants included (1 ≤ n_queries ≤ n_items).
        seed: everything is a function of this seed.
        workers: processes for rendering images; default ``min(2, os.cpu_count())``. Small
            catalogues (< 2000 items) and ``workers=1`` render in this process. The output does
            not depend on it.
        overwrite: replace the demo files (the four bundle files and ``images/``) in a
            non-empty ``out_dir``; other files there are left alone.
        image_size: width and height of the images in pixels.

    Returns:
        Counts of what was written.

    Raises:
        DemoError: ``out_dir`` is a non-empty folder and ``overwrite`` is false, or is a file;
            ``n_items`` < 50; ``n_queries`` < 1 or > ``n_items``; ``workers`` < 1;
            ``image_size`` < 32.
    """
    out_dir = Path(out_dir)
    if n_items < _MIN_ITEMS:
        raise DemoError(f"n_items is {n_items}; ask for at least {_MIN_ITEMS} items")
    if n_queries < 1:
        raise DemoError(f"n_queries is {n_queries}; ask for at least 1 query")
    if n_queries > n_items:
        raise DemoError(
            f"n_queries ({n_queries}) exceeds n_items ({n_items}): every query needs its own target "
            f"item; ask for at most {n_items} queries or more items"
        )
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if workers < 1:
        raise DemoError(f"workers is {workers}; use at least 1 (or leave it unset)")
    if image_size < 32:
        raise DemoError(f"image_size is {image_size}; use at least 32 pixels")
    _prepare_out_dir(out_dir, overwrite)

    started = time.perf_counter()
    rng = random.Random(seed)
    item_width = max(6, len(str(n_items)))
    query_width = max(4, len(str(n_queries)))
    item_ids = [f"it{i + 1:0{item_width}d}" for i in range(n_items)]
    items: list[dict[str, str]] = []
    item_lines: list[str] = []
    jobs: list[tuple[str, dict[str, str], int]] = []
    images_dir = out_dir / "images"
    for item_id in item_ids:
        attributes = sample_item_attributes(rng)
        language = "de" if rng.random() < _GERMAN_SHARE else "en"
        title, text = item_text(attributes, language, rng)
        image_seed = rng.getrandbits(32)
        items.append(attributes)
        jobs.append((str(images_dir / f"{item_id}.jpg"), attributes, image_seed))
        item_lines.append(
            _dumps(
                {
                    "id": item_id,
                    "title": title,
                    "text": text,
                    "image": f"images/{item_id}.jpg",
                    "category": attributes["type"],
                    "language": language,
                    "attributes": attributes,
                }
            )
        )
    queries = _plan_queries(items, n_queries, rng)
    planned = time.perf_counter()

    _render_all(jobs, image_size, workers)
    rendered = time.perf_counter()

    query_lines: list[str] = []
    qrels_lines = ["query-id\tcorpus-id\tscore"]
    truth_lines: list[str] = []
    n_false_negatives = n_wrong_positives = 0
    for number, q in enumerate(queries, start=1):
        query_id = f"q{number:0{query_width}d}"
        labelled = q.labelled()
        wrong = q.wrong_positives or {}
        n_false_negatives += len(q.false_negatives)
        n_wrong_positives += len(wrong)
        query_lines.append(
            _dumps(
                {
                    "id": query_id,
                    "text": q.text,
                    "category": q.conditions["type"],
                    "language": q.language,
                    "source": q.source,
                    "group": q.group,
                }
            )
        )
        qrels_lines.extend(f"{query_id}\t{item_ids[i]}\t1" for i in labelled)
        truth_lines.append(
            _dumps(
                {
                    "query_id": query_id,
                    "target_id": item_ids[q.target],
                    "conditions": q.conditions,
                    "true_positives": [item_ids[i] for i in q.true_positives],
                    "labelled_positives": [item_ids[i] for i in labelled],
                    "false_negatives": [item_ids[i] for i in q.false_negatives],
                    "wrong_positives": [item_ids[i] for i in sorted(wrong)],
                    "wrong_positive_violations": {item_ids[i]: wrong[i] for i in sorted(wrong)},
                    "bad": q.bad,
                    "source": q.source,
                    "group": q.group,
                }
            )
        )
    _write_files(
        out_dir,
        {
            "items.jsonl": item_lines,
            "queries.jsonl": query_lines,
            "qrels.tsv": qrels_lines,
            "truth.jsonl": truth_lines,
        },
    )
    summary = DemoSummary(
        out_dir=out_dir,
        n_items=n_items,
        n_queries=len(queries),
        n_qrels=len(qrels_lines) - 1,
        n_false_negatives=n_false_negatives,
        n_wrong_positives=n_wrong_positives,
        n_bad_queries=sum(q.bad is not None for q in queries),
        n_groups=len({q.group for q in queries if q.group is not None}),
    )
    finished = time.perf_counter()
    logger.info(
        "demo bundle in %s: %d items, %d queries, %d qrels (%d false negatives, %d wrong positives, "
        "%d bad queries, %d groups); plan %.1fs, render %.1fs (%d workers), write %.1fs",
        out_dir,
        summary.n_items,
        summary.n_queries,
        summary.n_qrels,
        summary.n_false_negatives,
        summary.n_wrong_positives,
        summary.n_bad_queries,
        summary.n_groups,
        planned - started,
        rendered - planned,
        workers,
        finished - rendered,
    )
    return summary
