"""Captions of demo item images, for training and evaluating the demo CLIP model.

:func:`visual_caption` says what an item's image shows (type, colour, pattern);
:func:`german_caption` is its German counterpart. :func:`caption_variant` draws the training
captions: variants naming one, two or three of the visual attributes, in English and (a fifth)
German worded like the demo's German queries, sometimes wrapped in a query opener and text-only
clauses (material, brand, size) that the image cannot show, so the text tower learns to ignore them.
The words come from :mod:`demo.vocabulary`, so the captions stay in step with the demo's queries.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from demo.text import a_an
from demo.vocabulary import (
    BRANDS,
    DE_COLOUR,
    DE_MATERIAL,
    DE_NOUN,
    DE_PATTERN,
    DE_PATTERN_CASUAL,
    EN_NOUN,
    MATERIALS,
    SIZES,
)

__all__ = ["caption_variant", "german_caption", "visual_caption"]

_PATTERN_WORDS: dict[str, tuple[str, ...]] = {
    "solid": ("solid", "plain"),
    "striped": ("striped", "with stripes"),
    "dotted": ("dotted", "with dots", "with polka dots"),
    "checked": ("checked", "checkered"),
}
_OPENERS = ("find", "show me", "i need", "i am looking for", "search for", "looking for")
_DE_GENERIC_NOUNS = (("Produkt", "ein", "Produkte"), ("Artikel", "einen", "Artikel"))


def visual_caption(attributes: Mapping[str, str]) -> str:
    """Describe what an item's image shows (colour, pattern, type), for training an image model.

    Args:
        attributes: an item's attributes; only ``type``, ``colour`` and ``pattern`` are used.

    Returns:
        e.g. ``"a photo of a red striped dress"`` or ``"a photo of an orange solid hat"``.
    """
    phrase = f"{attributes['colour']} {attributes['pattern']} {EN_NOUN[attributes['type']]}"
    return f"a photo of {a_an(phrase)} {phrase}"


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")


def _mentions(rng: random.Random) -> tuple[bool, bool, bool]:
    """Which of (type, colour, pattern) a partial caption names."""
    draw = rng.random()
    for threshold, mentions in (
        (0.36, (True, True, False)),
        (0.65, (True, False, True)),
        (0.76, (True, False, False)),
        (0.88, (False, True, True)),
        (0.94, (False, True, False)),
        (0.97, (False, False, True)),
    ):
        if draw < threshold:
            return mentions
    return (True, True, True)


def _english(attributes: Mapping[str, str], mentions: Sequence[bool], rng: random.Random) -> str:
    noun = attributes["type"] if mentions[0] else rng.choice(("product", "item", "thing"))
    plural = rng.random() < 0.2
    if plural:
        noun = _plural(noun)
    colour = attributes["colour"] if mentions[1] else ""
    pattern_word = rng.choice(_PATTERN_WORDS[attributes["pattern"]]) if mentions[2] else ""
    before = [colour]
    after = ""
    if pattern_word.startswith("with "):
        after = pattern_word
    else:
        before.append(pattern_word)
    phrase = " ".join(w for w in (*before, noun) if w)
    if after:
        phrase = f"{phrase} {after}"
    article = "" if plural else f"{a_an(phrase)} "
    style = rng.random()
    if style < 0.3:
        text = f"a photo of {article}{phrase}"
    elif style < 0.55:
        text = f"{article}{phrase}"
    elif style < 0.8:
        text = phrase
    else:
        text = f"{rng.choice(_OPENERS)} {article}{phrase}"
    if rng.random() < 0.3:  # text-only attributes the image cannot show: to be ignored
        product_type = attributes["type"]
        clauses = [
            f"made of {rng.choice(MATERIALS[product_type])}",
            f"by {rng.choice(BRANDS)}",
            f"in size {rng.choice(SIZES[product_type])}",
        ]
        text = " ".join([text, *rng.sample(clauses, rng.randint(1, 2))])
    return text


def _german(attributes: Mapping[str, str], mentions: Sequence[bool], rng: random.Random) -> str:
    """German phrasings in the style of the demo's German queries (comma-separated conditions)."""
    singular, article, plural = DE_NOUN[attributes["type"]] if mentions[0] else rng.choice(_DE_GENERIC_NOUNS)
    parts: list[str] = []
    if mentions[1]:
        parts.append(rng.choice(("in {}", "am liebsten in {}", "{}")).format(DE_COLOUR[attributes["colour"]]))
    if mentions[2]:
        table = DE_PATTERN if rng.random() < 0.6 else DE_PATTERN_CASUAL
        parts.append(table[attributes["pattern"]])
    if rng.random() < 0.3:  # text-only attributes the image cannot show: to be ignored
        product_type = attributes["type"]
        clauses = [
            f"aus {DE_MATERIAL[rng.choice(MATERIALS[product_type])]}",
            f"von {rng.choice(BRANDS)}",
            f"Größe {rng.choice(SIZES[product_type])}",
        ]
        parts.extend(rng.sample(clauses, rng.randint(1, 2)))
    if rng.random() < 0.5:
        rng.shuffle(parts)
    head = rng.choice(
        (
            f"Ich suche {article} {singular}",
            f"Gesucht: {singular}",
            f"Zeige mir {plural}",
            singular,
            plural,
            f"hallo, habt ihr {plural}?",
            f"gibt es {plural}?",
        )
    )
    return ", ".join([head, *parts]) if not head.endswith("?") else f"{head} {', '.join(parts)}".strip()


def caption_variant(attributes: Mapping[str, str], rng: random.Random) -> tuple[str, tuple[bool, bool, bool]]:
    """Draw a caption for an item and which of (type, colour, pattern) it names.

    A quarter are the full :func:`visual_caption`; the rest name the type with one or both of
    colour and pattern, or only some of the three, in several English phrasings, and a fifth of
    all are German, worded like the demo's German queries.
    """
    if rng.random() < 0.25:
        return visual_caption(attributes), (True, True, True)
    mentions = _mentions(rng)
    german = rng.random() < 0.25
    text = _german(attributes, mentions, rng) if german else _english(attributes, mentions, rng)
    return text, mentions


def german_caption(attributes: Mapping[str, str]) -> str:
    """The German counterpart of :func:`visual_caption`, e.g. ``"Kleid, in Rot, gestreift"``."""
    singular = DE_NOUN[attributes["type"]][0]
    return f"{singular}, in {DE_COLOUR[attributes['colour']]}, {DE_PATTERN[attributes['pattern']]}"
