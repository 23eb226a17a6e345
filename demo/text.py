"""Texts of the demo catalogue: item titles and descriptions, and query texts.

An item's title and description name its TEXT attributes only (material, brand, size); colour
and pattern are visible only in its image. Queries are written in English or German, either from
a template (source ``generated``) or in a casual ``human`` phrasing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from demo.vocabulary import (
    DE_CARE,
    DE_COLOUR,
    DE_FEATURES,
    DE_MATERIAL,
    DE_NOUN,
    DE_PATTERN,
    DE_PATTERN_CASUAL,
    DE_WORD_SIZE,
    EN_CARE,
    EN_CASUAL_PATTERN,
    EN_FEATURES,
    EN_NOUN,
    EN_PLURAL,
    MODEL_NAMES,
    WORD_SIZES,
    Conditions,
)

__all__ = ["a_an", "attribute_words", "item_text", "keyword_query", "query_text"]

# --------------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------------


def a_an(phrase: str) -> str:
    """Return the English indefinite article for ``phrase``."""
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def _en_size(product_type: str, size: str) -> str:
    return f"in {size} size" if size in WORD_SIZES else f"in size {size}"


def _de_size(size: str) -> str:
    return f"Größe {DE_WORD_SIZE.get(size, size)}"


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
    model = rng.choice(MODEL_NAMES)
    if language == "en":
        noun = EN_NOUN[product_type]
        title = f"{brand} {model} {material} {noun}"
        features = rng.sample(EN_FEATURES[product_type], 2)
        size_text = f"Size: {size}." if size in WORD_SIZES else f"Size {size}."
        opening = rng.choice(
            (
                f"{a_an(material).capitalize()} {material} {noun} by {brand}.",
                f"The {model} {noun} from {brand}, made of {material}.",
                f"{brand} presents the {model}: {a_an(material)} {material} {noun}.",
            )
        )
        parts = [opening, *features, size_text, rng.choice(EN_CARE)]
    elif language == "de":
        noun = DE_NOUN[product_type][0]
        mat = DE_MATERIAL[material]
        title = f"{brand} {model} {noun} aus {mat}"
        features = rng.sample(DE_FEATURES[product_type], 2)
        opening = rng.choice(
            (
                f"{noun} aus {mat} von {brand}.",
                f"Das Modell {model} von {brand}, gefertigt aus {mat}.",
            )
        )
        parts = [opening, *features, f"{_de_size(size)}.", rng.choice(DE_CARE)]
    else:
        raise ValueError(f"language must be 'en' or 'de', not {language!r}")
    return title, " ".join(p for p in parts if p)


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------


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
    words.append(EN_PLURAL[product_type] if plural else EN_NOUN[product_type])
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
    article = "" if plural else a_an(phrase) + " "
    return " ".join([f"{opener} {article}{phrase}", *clauses])


def _en_human(conditions: Conditions, rng: random.Random) -> str:
    product_type = conditions["type"]
    fragments: list[str] = []
    if "colour" in conditions:
        fragments.append(rng.choice(("in {}", "{} one", "preferably {}")).format(conditions["colour"]))
    if "pattern" in conditions:
        fragments.append(EN_CASUAL_PATTERN[conditions["pattern"]])
    if "material" in conditions:
        fragments.append(
            rng.choice(("{} if possible", "made from {}", "the {} kind")).format(conditions["material"])
        )
    if "brand" in conditions:
        fragments.append(rng.choice(("from {}", "{} brand", "something by {}")).format(conditions["brand"]))
    if "size" in conditions:
        size = conditions["size"]
        fragments.append(f"a {size} one" if size in WORD_SIZES else f"size {size}")
    rng.shuffle(fragments)
    noun = "shoes" if product_type == "shoe" else f"{a_an(product_type)} {EN_NOUN[product_type]}"
    opener = rng.choice(("hi, looking for", "need", "anyone got", "hey do you have", "searching for"))
    closer = rng.choice(("", " thx", " please", "?", " :)"))
    return f"{opener} {noun}, {', '.join(fragments)}{closer}"


def _de_generated(conditions: Conditions, rng: random.Random) -> str:
    product_type = conditions["type"]
    singular, article, plural = DE_NOUN[product_type]
    parts: list[str] = []
    if "colour" in conditions:
        value = conditions["colour"]
        colours = value if isinstance(value, list) else [value]
        parts.append("in " + " und ".join(DE_COLOUR[c] for c in colours))
    if "pattern" in conditions:
        parts.append(DE_PATTERN[conditions["pattern"]])
    if "material" in conditions:
        parts.append(f"aus {DE_MATERIAL[conditions['material']]}")
    if "brand" in conditions:
        parts.append(f"von {conditions['brand']}")
    if "size" in conditions:
        parts.append(_de_size(conditions["size"]))
    head = rng.choice((f"Ich suche {article} {singular}", f"Gesucht: {singular}", f"Zeige mir {plural}"))
    return ", ".join([head, *parts])


def _de_human(conditions: Conditions, rng: random.Random) -> str:
    fragments: list[str] = []
    if "colour" in conditions:
        fragments.append(rng.choice(("am liebsten in {}", "in {}")).format(DE_COLOUR[conditions["colour"]]))
    if "pattern" in conditions:
        fragments.append(DE_PATTERN_CASUAL[conditions["pattern"]])
    if "material" in conditions:
        fragments.append(f"aus {DE_MATERIAL[conditions['material']]}")
    if "brand" in conditions:
        fragments.append(rng.choice(("von {}", "gern von {}")).format(conditions["brand"]))
    if "size" in conditions:
        fragments.append(_de_size(conditions["size"]))
    rng.shuffle(fragments)
    plural = DE_NOUN[conditions["type"]][2]
    opener = rng.choice(("hallo, habt ihr", "gibt es", "hat jemand"))
    closer = rng.choice(("", " danke", " bitte", "!"))
    return f"{opener} {plural}? {', '.join(fragments)}{closer}"


def query_text(conditions: Conditions, language: str, source: str, rng: random.Random) -> str:
    """Write a query asking for ``conditions``.

    Args:
        conditions: attribute -> value; a list of two values means "must be both".
        language: ``"de"`` for German, anything else for English.
        source: ``"human"`` for a casual phrasing, anything else for a template (``"generated"``).
        rng: the random source for the wording.

    Returns:
        The query text.
    """
    if language == "de":
        return _de_human(conditions, rng) if source == "human" else _de_generated(conditions, rng)
    return _en_human(conditions, rng) if source == "human" else _en_generated(conditions, rng)


# --------------------------------------------------------------------------------------------
# Keyword queries
# --------------------------------------------------------------------------------------------


def attribute_words(attribute: str, value: str, language: str) -> str:
    """The words a shopper types for one attribute value: ``"brass"``/``"Messing"``, ``"size M"``."""
    german = language == "de"
    if attribute == "type":
        return DE_NOUN[value][0] if german else EN_NOUN[value]
    if attribute == "colour":
        return DE_COLOUR[value] if german else value
    if attribute == "pattern":
        return DE_PATTERN[value] if german else value
    if attribute == "material":
        return DE_MATERIAL[value] if german else value
    if attribute == "size":
        if value in WORD_SIZES:
            return DE_WORD_SIZE[value] if german else value
        return f"Größe {value}" if german else f"size {value}"
    return value  # brand


def keyword_query(conditions: Conditions, language: str, rng: random.Random) -> str:
    """A search-box query: the words of each condition in a random order ("solid brass lamp medium")."""
    words = [attribute_words(a, v, language) for a, v in conditions.items()]
    rng.shuffle(words)
    return " ".join(words)
