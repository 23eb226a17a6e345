"""A stratified, seeded, reproducible sample of the kept queries.

Strata are the combinations of query fields (``category``, ``language``, ``source``); each gets a
largest-remainder proportional quota (:func:`allocate`) and is drawn with its own seeded generator.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.cleaning.decisions import QueryOutcome
from services.core.errors import ValidationError

# Query fields a sample can be stratified over.
STRATIFY_FIELDS = ("category", "language", "source")


@dataclass(frozen=True)
class Stratum:
    key: tuple[str | None, ...]  # one value per field
    available: int
    selected: int


@dataclass(frozen=True)
class Sample:
    fields: tuple[str, ...]
    size: int
    seed: int
    selected: tuple[str, ...]  # query ext ids, sorted
    strata: tuple[Stratum, ...]  # sorted by key (None first)


def _sort_key(key: tuple[str | None, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((0, "") if v is None else (1, v) for v in key)


def allocate(sizes: dict[Any, int], total: int, order: Any = None) -> dict[Any, int]:
    """Largest-remainder proportional allocation of ``total`` over strata of ``sizes``.

    Every stratum gets ``floor(total * n / N)``; the units left go to the largest fractional
    remainders, ties to the larger stratum and then to the earlier key (``order`` sorts keys).
    """
    population = sum(sizes.values())
    if population == 0:
        return dict.fromkeys(sizes, 0)
    keys = sorted(sizes, key=order)
    position = {k: n for n, k in enumerate(keys)}
    quotas = {k: total * sizes[k] // population for k in keys}
    remainders = {k: total * sizes[k] % population for k in keys}
    left = total - sum(quotas.values())
    rank = sorted(keys, key=lambda k: (-remainders[k], -sizes[k], position[k]))
    for k in rank[:left]:
        quotas[k] += 1
    return quotas


def sample_queries(
    outcomes: Sequence[QueryOutcome], size: int, fields: Sequence[str] = (), seed: int = 0
) -> Sample:
    """A stratified random sample of ``size`` queries, proportional over ``fields``, reproducible.

    Strata get largest-remainder proportional quotas (:func:`allocate`); each stratum is drawn
    with its own ``random.Random`` seeded from ``seed`` and the stratum, over its queries sorted by
    id, so the draw depends on nothing but the inputs. ``size`` at or above the number of queries
    keeps them all.

    Raises:
        ValidationError: ``size`` < 1, or a field that cannot be stratified over.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValidationError(f"the sample size must be a whole number of at least 1, got {size!r}")
    fields = tuple(dict.fromkeys(f.strip() for f in fields if f.strip()))
    unknown = [f for f in fields if f not in STRATIFY_FIELDS]
    if unknown:
        raise ValidationError(
            f"cannot stratify over {', '.join(unknown)}; choose from {', '.join(STRATIFY_FIELDS)}"
        )
    strata: dict[tuple[str | None, ...], list[str]] = defaultdict(list)
    for o in outcomes:
        strata[tuple(getattr(o, f) for f in fields)].append(o.ext_id)
    total = min(size, sum(len(v) for v in strata.values()))
    quotas = allocate({k: len(v) for k, v in strata.items()}, total, order=_sort_key)
    selected: list[str] = []
    described = []
    for key in sorted(strata, key=_sort_key):
        ids = sorted(strata[key])
        rng = random.Random("\x1f".join([str(seed), *("\x00" if v is None else v for v in key)]))
        chosen = ids if quotas[key] >= len(ids) else rng.sample(ids, quotas[key])
        selected.extend(chosen)
        described.append(Stratum(key, len(ids), len(chosen)))
    return Sample(fields, size, seed, tuple(sorted(selected)), tuple(described))
