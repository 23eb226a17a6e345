"""Single-modality queries in the demo: planted ones, and which queries one modality alone answers.

MCMR's design asks that no query be answerable from the image alone or the text alone. The demo
plants some queries that break it, so the tool's modality-shortcut flags can be scored:

* ``image``: the conditions are the type plus colour and pattern only (both visible only in the
  image), e.g. "a red striped dress";
* ``text``: the conditions are the type plus material and brand (and the size when needed), named
  only in the item text.

They are made, when asked (``single_modality_share``), from good query lines with no planted error
(no group, no false negative, no wrong positive), after every other choice, so the other lines of a
seed stay as they were. Every query's
truth says which modality alone pins down its positives (:func:`single_modality`): the planted ones
by construction, and any other query whose conditions of one modality (with its type) select
exactly its true positives.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from demo.text import query_text
from demo.vocabulary import ATTRIBUTES, TEXT_ATTRIBUTES, VISUAL_ATTRIBUTES, Conditions

if TYPE_CHECKING:
    from demo.planner import PlannedQuery

__all__ = ["SINGLE_MODALITY_SHARE", "plant_single_modality", "single_modality"]

#: Share of the good query lines the app's demo (``cli.py setup``, ``cli.py demo``) turns into
#: single-modality ones, half image and half text. ``generate_demo`` plants none unless asked, so a
#: seed's catalogue and the figures measured on it stay what they were.
SINGLE_MODALITY_SHARE = 0.10


class _Matcher(Protocol):
    def match(self, conditions: Mapping[str, Any]) -> set[int]: ...


def _part(conditions: Mapping[str, Any], attributes: Sequence[str]) -> Conditions:
    return {a: v for a, v in conditions.items() if a == "type" or a in attributes}


def single_modality(
    conditions: Mapping[str, Any], true_positives: Sequence[int], index: _Matcher
) -> str | None:
    """``image``, ``text`` or ``both`` when that modality's conditions alone (with the type) select
    exactly ``true_positives``; None when neither does, or for a query with no true positive."""
    if not true_positives:
        return None
    wanted = set(true_positives)
    found = []
    for name, attributes in (("image", VISUAL_ATTRIBUTES), ("text", TEXT_ATTRIBUTES)):
        if not any(a in attributes for a in conditions):
            continue  # the query names nothing this modality shows
        if index.match(_part(conditions, attributes)) == wanted:
            found.append(name)
    return "both" if len(found) == 2 else found[0] if found else None


def _conditions_for(
    modality: str, attrs: Mapping[str, str], index: _Matcher, max_positives: int
) -> tuple[Conditions, set[int]] | None:
    """The target's single-modality conditions, tightened to at most ``max_positives`` items."""
    if modality == "image":
        steps: list[tuple[str, ...]] = [("type", "colour", "pattern")]
    else:
        steps = [("type", "material", "brand"), ("type", "material", "brand", "size")]
    for chosen in steps:
        conditions = {a: attrs[a] for a in ATTRIBUTES if a in chosen}
        hits = index.match(conditions)
        if len(hits) <= max_positives:
            return conditions, hits
    return None


def plant_single_modality(
    queries: list[PlannedQuery],
    items: Sequence[Mapping[str, str]],
    index: _Matcher,
    used_keys: set[tuple[tuple[str, Any], ...]],
    rng: random.Random,
    *,
    max_positives: int,
    share: float,
) -> None:
    """Turn some clean good query lines into single-modality ones (in place), then record for
    every line which modality alone answers it (``PlannedQuery.single_modality``)."""
    good = [q for q in queries if q.bad is None]
    eligible = [q for q in good if q.group is None and not q.false_negatives and not q.wrong_positives]
    wanted = min(len(eligible), round(len(good) * share))
    rng.shuffle(eligible)
    modalities = ("image", "text")
    planted = 0
    for q in eligible:
        if planted == wanted:
            break
        first = modalities[planted % 2]
        for modality in (first, *(m for m in modalities if m != first)):
            made = _conditions_for(modality, items[q.target], index, max_positives)
            if made is None:
                continue
            conditions, hits = made
            key = tuple(conditions.items())  # the planner's key: attribute order, string values
            if key in used_keys:
                continue
            used_keys.add(key)
            q.conditions, q.true_positives = conditions, tuple(sorted(hits))
            q.text = query_text(conditions, q.language, q.source, rng)
            planted += 1
            break
    for q in queries:
        q.single_modality = single_modality(q.conditions, q.true_positives, index) if q.bad is None else None
