"""Query planning for the demo catalogue: targets, conditions, positives and planted problems.

On top of the exact answers the planner plants errors a real pipeline would make, recorded in
``truth.jsonl`` (which the importer ignores):

* false negatives: true positives left out of ``qrels.tsv``;
* wrong positives: items in ``qrels.tsv`` that violate exactly one condition;
* bad queries: ``contradictory`` (two values of one attribute) or ``unanswerable`` (a
  combination no item has), whose qrels still carry one or two near misses;
* query variants: pairs of queries with identical conditions, one template-``generated`` and one
  casual ``human`` phrasing, sharing a ``group`` id;
* single-modality queries: conditions that one modality alone answers (:mod:`demo.shortcuts`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from demo.shortcuts import plant_single_modality
from demo.text import query_text
from demo.vocabulary import (
    ATTRIBUTES,
    COLOURS,
    GERMAN_SHARE,
    MATERIALS,
    TEXT_ATTRIBUTES,
    VISUAL_ATTRIBUTES,
    Conditions,
)
from services.core.errors import DemoError

__all__ = ["MAX_POSITIVES", "PlannedQuery", "plan_queries"]

#: A target's conditions are tightened until at most this many items satisfy them.
MAX_POSITIVES = 15

_BAD_SHARE = 0.08
_GROUP_SHARE = 0.20  # of targets
_FALSE_NEGATIVE_SHARE = 0.40  # of good queries
_WRONG_POSITIVE_SHARE = 0.25  # of good queries


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


@dataclass
class PlannedQuery:
    """A query line with its planted truth; items are indices into the item list until the
    writer turns them into item ids."""

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
    single_modality: str | None = None  # "image", "text" or "both": one modality alone answers it

    def labelled(self) -> list[int]:
        """The items written to ``qrels.tsv``: true positives less false negatives, plus wrong positives."""
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


def plan_queries(
    items: Sequence[Mapping[str, str]],
    n_queries: int,
    rng: random.Random,
    *,
    single_modality_share: float = 0.0,
) -> list[PlannedQuery]:
    """Build every query line (in output order) with its planted truth and its text.

    Args:
        items: every item's attributes, in item order.
        n_queries: query lines to plan, group variants included.
        rng: the random source; every choice is drawn from it, in a fixed order.
        single_modality_share: share of the good query lines made single-modality
            (:mod:`demo.shortcuts`); 0 plants none and leaves every line as before that option.

    Returns:
        The query lines, in the order they are written.

    Raises:
        DemoError: the items allow fewer distinct queries than asked for.
    """
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
    queries: list[PlannedQuery] = []
    group_count = 0
    for slot in slots:
        language = "de" if rng.random() < GERMAN_SHARE else "en"
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
            queries.append(PlannedQuery(conditions, target, language, bad=kind, wrong_positives=wrong))
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
                    PlannedQuery(
                        conditions, target, language, source=source, group=group, true_positives=hits
                    )
                )
        else:
            queries.append(PlannedQuery(conditions, target, language, true_positives=hits))

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
        q.text = query_text(q.conditions, q.language, q.source, rng)
    # Last, so every line it leaves alone is what this seed gave before it existed.
    plant_single_modality(
        queries,
        items,
        planner.index,
        planner.used_keys,
        rng,
        max_positives=MAX_POSITIVES,
        share=single_modality_share,
    )
    return queries
