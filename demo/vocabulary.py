"""The demo catalogue's vocabulary: attribute values, and the English and German words for them.

The catalogue follows the "dual evidence" style: every item has VISUAL attributes (``colour``,
``pattern``) that appear only in its image, and TEXT attributes (``material``, ``brand``,
``size``) that appear only in its title and description. Queries ask for a product type plus at
least one visual and one text attribute, so answering them needs both modalities.

The word tables are public so that the demo CLIP training captions (:mod:`demo.captions`) use
the same words as the queries the demo writes.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = [
    "ATTRIBUTES",
    "BRANDS",
    "COLOURS",
    "DE_CARE",
    "DE_COLOUR",
    "DE_FEATURES",
    "DE_MATERIAL",
    "DE_NOUN",
    "DE_PATTERN",
    "DE_PATTERN_CASUAL",
    "DE_WORD_SIZE",
    "EN_CARE",
    "EN_CASUAL_PATTERN",
    "EN_FEATURES",
    "EN_NOUN",
    "EN_PLURAL",
    "GERMAN_SHARE",
    "MATERIALS",
    "MODEL_NAMES",
    "PATTERNS",
    "PRODUCT_TYPES",
    "SIZES",
    "TEXT_ATTRIBUTES",
    "VISUAL_ATTRIBUTES",
    "WORD_SIZES",
    "Conditions",
    "sample_item_attributes",
]

# --------------------------------------------------------------------------------------------
# Attributes
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
WORD_SIZES = ("small", "medium", "large")

SIZES: dict[str, tuple[str, ...]] = {
    "top": _CLOTHING_SIZES,
    "dress": _CLOTHING_SIZES,
    "shoe": _SHOE_SIZES,
    "bag": WORD_SIZES,
    "chair": WORD_SIZES,
    "lamp": WORD_SIZES,
    "hat": ("S", "M", "L"),
}

VISUAL_ATTRIBUTES: tuple[str, ...] = ("colour", "pattern")
TEXT_ATTRIBUTES: tuple[str, ...] = ("material", "brand", "size")
#: Every attribute, in the order used for ``attributes`` and ``conditions`` objects.
ATTRIBUTES: tuple[str, ...] = ("type", *VISUAL_ATTRIBUTES, *TEXT_ATTRIBUTES)

#: A query's conditions: attribute -> value (a list of two values for "contradictory").
Conditions = dict[str, Any]

#: Share of items and of queries written in German (the rest are English).
GERMAN_SHARE = 0.15

#: Product model names in item titles (both languages).
MODEL_NAMES = ("Aria", "Vega", "Milo", "Juno", "Orion", "Tessa", "Luca", "Nova", "Atlas", "Elio")

# --------------------------------------------------------------------------------------------
# English words
# --------------------------------------------------------------------------------------------

EN_NOUN = {t: t for t in PRODUCT_TYPES}
EN_PLURAL = {
    "top": "tops",
    "dress": "dresses",
    "shoe": "shoes",
    "bag": "bags",
    "chair": "chairs",
    "lamp": "lamps",
    "hat": "hats",
}
EN_FEATURES: dict[str, tuple[str, ...]] = {
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
EN_CARE = ("Care instructions on the label.", "Ships within two days.", "Thirty-day returns.", "")
EN_CASUAL_PATTERN = {
    "solid": "plain with no pattern",
    "striped": "with stripes",
    "dotted": "with polka dots",
    "checked": "checkered",
}

# --------------------------------------------------------------------------------------------
# German words
# --------------------------------------------------------------------------------------------

# type -> (singular, accusative indefinite article, plural)
DE_NOUN: dict[str, tuple[str, str, str]] = {
    "top": ("Oberteil", "ein", "Oberteile"),
    "dress": ("Kleid", "ein", "Kleider"),
    "shoe": ("Schuh", "einen", "Schuhe"),
    "bag": ("Tasche", "eine", "Taschen"),
    "chair": ("Stuhl", "einen", "Stühle"),
    "lamp": ("Lampe", "eine", "Lampen"),
    "hat": ("Hut", "einen", "Hüte"),
}
DE_COLOUR = {
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
DE_PATTERN = {"solid": "einfarbig", "striped": "gestreift", "dotted": "gepunktet", "checked": "kariert"}
DE_PATTERN_CASUAL = {
    "solid": "ohne Muster",
    "striped": "mit Streifen",
    "dotted": "mit Punkten",
    "checked": "kariert",
}
DE_MATERIAL = {
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
DE_WORD_SIZE = {"small": "klein", "medium": "mittel", "large": "groß"}
DE_FEATURES: dict[str, tuple[str, ...]] = {
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
DE_CARE = ("Pflegehinweise auf dem Etikett.", "Versand in zwei Tagen.", "30 Tage Rückgaberecht.", "")

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
