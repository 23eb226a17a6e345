"""Chance-corrected agreement coefficients: pure computation over labels, no database.

Relevance positives are sparse, and chance-corrected kappas swing with prevalence (the "kappa
paradox": two raters who agree on 94% of units can get a kappa below zero). So beside Cohen's and
Fleiss' kappa and Krippendorff's alpha this module reports raw percent agreement, Gwet's AC1
(whose chance term never exceeds 1/q, so it stays stable when one category dominates) and
set-level Jaccard and F1 over each unit's positives.

Maintained libraries do the work where they exist: Cohen's kappa is scikit-learn's, Fleiss' kappa
statsmodels', Krippendorff's alpha the ``krippendorff`` package's. Gwet's AC1 has no maintained
package that installs beside this stack, so :func:`gwet_ac1_pair` and :func:`gwet_ac1` implement
it after Gwet, *Handbook of Inter-Rater Reliability*, 4th ed. (2014), and Gwet (2008), "Computing
inter-rater reliability and its variance in the presence of high agreement", Br J Math Stat
Psychol 61:29-48.

Conventions:

- A label is any hashable value; ``None`` or a float NaN is a missing rating.
- Two-rater functions take two equally long label lists over the same units and use the units
  both raters labelled. Multi-rater functions take a units x raters matrix (nested lists, a NumPy
  array or a pandas DataFrame).
- Every statistic comes back as a :class:`Coefficient`. Where its formula is undefined on the
  input, ``value`` is ``None`` and ``reason`` says why: degenerate input never raises and never
  divides by zero. Malformed input (lists of unequal length, a ragged matrix, a label outside
  the given ``categories``) raises ``ValueError``.

Degenerate cases, and what each statistic returns:

- No unit rated by both raters (two-rater), or no unit rated by two or more (multi-rater):
  ``None`` throughout ("no pairable unit").
- Every rating in one category: percent agreement 1.0. Cohen's and Fleiss' kappa ``None`` (their
  chance agreement is 1, so they are 0/0). Krippendorff's alpha ``None`` (no variation, so the
  expected disagreement is 0). AC1 ``None`` when only that one category is known (its chance
  term has a factor 1/(q-1)); when ``categories`` names two or more, AC1's chance term is 0 and
  AC1 equals percent agreement, 1.0.
- A single unit: whatever the formula gives; e.g. two raters who disagree on it get percent
  agreement 0, Cohen's kappa 0 and AC1 -1.
- Set agreement of two empty sets (neither rater marked a positive): Jaccard 1.0 and F1 1.0, by
  definition here; they agree that the unit has no positive.
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Label = Hashable
Level = Literal["nominal", "ordinal"]

PERCENT = "percent agreement"
COHEN = "Cohen's kappa"
FLEISS = "Fleiss' kappa"
KRIPPENDORFF = "Krippendorff's alpha"
AC1 = "Gwet's AC1"

NO_PAIR_TWO = "no unit was labelled by both raters"
NO_PAIR_MULTI = "no unit has two or more ratings"
ONE_CATEGORY_KAPPA = "every rating is the same category: chance agreement is 1, so kappa is 0/0"
ONE_CATEGORY_AC1 = (
    "only one category is known: AC1's chance term divides by (q - 1); "
    "pass categories naming the full scale to get a value"
)
NO_VARIATION_ALPHA = "every pairable rating is the same value: expected disagreement is 0, so alpha is 0/0"


@dataclass(frozen=True)
class Coefficient:
    """One agreement statistic.

    Attributes:
        name: which statistic, e.g. ``"Cohen's kappa"``.
        value: the statistic, or ``None`` where its formula is undefined on the input.
        n_units: units it was computed over (two-rater: labelled by both; multi-rater: with two or
            more ratings; Fleiss: those actually used, see ``note``).
        observed: observed agreement, where the statistic has one (kappa, AC1, percent).
        expected: chance agreement, where the statistic has one (kappa, AC1).
        reason: why ``value`` is ``None``; ``None`` when there is a value.
        note: a caveat on what the value covers (Fleiss' kappa over a subset of units).
    """

    name: str
    value: float | None
    n_units: int
    observed: float | None = None
    expected: float | None = None
    reason: str | None = None
    note: str | None = None


# ---------------------------------------------------------------------------------------------
# Input handling


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def clean(value: Any) -> Label | None:
    """A rating as a plain Python value, or ``None`` when it is missing."""
    if _is_missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def sort_key(value: Label) -> tuple[int, float, str]:
    # Numbers in numeric order, then everything else by its text; mixed scales still sort.
    if isinstance(value, numbers.Real):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def scale_of(seen: Iterable[Label], categories: Sequence[Label] | None) -> list[Label]:
    """The categories to compute over: ``categories`` when given, else the labels seen, sorted."""
    seen = set(seen)
    if categories is None:
        return sorted(seen, key=sort_key)
    scale = list(dict.fromkeys(categories))
    outside = seen - set(scale)
    if outside:
        raise ValueError(
            f"labels {sorted(outside, key=sort_key)!r} are not in categories {scale!r}; "
            "add them to categories or leave categories out"
        )
    return scale


def _pairs(a: Sequence[Any], b: Sequence[Any]) -> list[tuple[Label, Label]]:
    """The (a, b) label pairs of the units both raters labelled."""
    if len(a) != len(b):
        raise ValueError(
            f"the two raters' label lists differ in length ({len(a)} and {len(b)}); "
            "give one label (or None) per unit for each rater"
        )
    cleaned = ((clean(x), clean(y)) for x, y in zip(a, b, strict=True))
    return [(x, y) for x, y in cleaned if x is not None and y is not None]


def _matrix(reliability_data: Any) -> list[list[Label | None]]:
    """A units x raters matrix as rows of plain values, ``None`` where a rating is missing."""
    if hasattr(reliability_data, "to_numpy"):  # pandas DataFrame
        reliability_data = reliability_data.to_numpy(dtype=object)
    rows = [[clean(v) for v in row] for row in reliability_data]
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(
            f"ratings rows differ in length {sorted(widths)}; "
            "give a units x raters matrix with None for a missing rating"
        )
    return rows


def _contingency(pairs: list[tuple[Label, Label]], scale: list[Label]) -> np.ndarray:
    """Proportions p[k, l] of units rater a put in category k and rater b in l."""
    index = {c: i for i, c in enumerate(scale)}
    table = np.zeros((len(scale), len(scale)))
    for x, y in pairs:
        table[index[x], index[y]] += 1
    return table / len(pairs)


def _unit_counts(rows: list[list[Label | None]], scale: list[Label]) -> np.ndarray:
    """r[i, k]: how many raters put unit i in category k."""
    index = {c: i for i, c in enumerate(scale)}
    counts = np.zeros((len(rows), len(scale)), dtype=np.int64)
    for i, row in enumerate(rows):
        for v in row:
            if v is not None:
                counts[i, index[v]] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# Two raters


def percent_agreement(a: Sequence[Any], b: Sequence[Any]) -> Coefficient:
    """Share of the units both raters labelled on which they gave the same label.

    Args:
        a: rater A's label per unit (``None`` or NaN where A gave none).
        b: rater B's label per unit, same units in the same order.

    Returns:
        The share, or ``None`` when no unit was labelled by both.
    """
    pairs = _pairs(a, b)
    if not pairs:
        return Coefficient(PERCENT, None, 0, reason=NO_PAIR_TWO)
    po = sum(x == y for x, y in pairs) / len(pairs)
    return Coefficient(PERCENT, po, len(pairs), observed=po)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any], categories: Sequence[Label] | None = None) -> Coefficient:
    """Cohen's (1960) kappa of two raters, computed by scikit-learn.

    Args:
        a: rater A's label per unit (``None`` or NaN where A gave none).
        b: rater B's label per unit, same units in the same order.
        categories: the label scale; unused categories do not change kappa.

    Returns:
        Kappa with its observed and chance agreement; ``None`` when no unit was labelled by both
        or when both raters used one and the same category throughout (chance agreement 1).
    """
    from sklearn.metrics import cohen_kappa_score  # heavy import, kept off page start-up

    pairs = _pairs(a, b)
    if not pairs:
        return Coefficient(COHEN, None, 0, reason=NO_PAIR_TWO)
    scale = scale_of((v for pair in pairs for v in pair), categories)
    table = _contingency(pairs, scale)
    po = float(np.trace(table))
    pe = float(table.sum(axis=1) @ table.sum(axis=0))
    if len({v for pair in pairs for v in pair}) == 1:
        return Coefficient(COHEN, None, len(pairs), po, pe, reason=ONE_CATEGORY_KAPPA)
    index = {c: i for i, c in enumerate(scale)}
    value = cohen_kappa_score([index[x] for x, _ in pairs], [index[y] for _, y in pairs])
    return Coefficient(COHEN, float(value), len(pairs), po, pe)


def gwet_ac1_pair(
    a: Sequence[Any], b: Sequence[Any], categories: Sequence[Label] | None = None
) -> Coefficient:
    """Gwet's AC1 of two raters (Gwet 2008, eq. 14; Handbook, 4th ed., ch. 4).

    AC1 = (pa - pe) / (1 - pe), where pa is the observed agreement and the chance agreement is
    pe = 1/(q-1) * sum_k pi_k (1 - pi_k), with pi_k the mean of the two raters' shares of
    category k and q the number of categories on the scale.

    Args:
        a: rater A's label per unit (``None`` or NaN where A gave none).
        b: rater B's label per unit, same units in the same order.
        categories: the full label scale. Gwet counts every category raters could choose, so
            pass it when some were not used (it changes q); default: the labels seen.

    Returns:
        AC1 with pa and pe; ``None`` when no unit was labelled by both or q < 2.
    """
    pairs = _pairs(a, b)
    if not pairs:
        return Coefficient(AC1, None, 0, reason=NO_PAIR_TWO)
    scale = scale_of((v for pair in pairs for v in pair), categories)
    table = _contingency(pairs, scale)
    pa = float(np.trace(table))
    q = len(scale)
    if q < 2:
        return Coefficient(AC1, None, len(pairs), observed=pa, reason=ONE_CATEGORY_AC1)
    # pi_k: how likely a rating is to land in k, averaged over the two raters' marginals.
    pi = (table.sum(axis=1) + table.sum(axis=0)) / 2
    # pe <= 1/q <= 1/2, so 1 - pe is never 0.
    pe = float((pi * (1 - pi)).sum() / (q - 1))
    return Coefficient(AC1, (pa - pe) / (1 - pe), len(pairs), pa, pe)


# ---------------------------------------------------------------------------------------------
# Many raters


def gwet_ac1(ratings: Any, categories: Sequence[Label] | None = None) -> Coefficient:
    """Gwet's AC1 for any number of raters with missing ratings (Handbook, 4th ed., ch. 4).

    With r_ik the number of raters who put unit i in category k and r_i = sum_k r_ik:

    - pa averages, over the n' units with r_i >= 2, the share of ordered rater pairs that agree:
      sum_k r_ik (r_ik - 1) / (r_i (r_i - 1));
    - pi_k averages r_ik / r_i over the n units with r_i >= 1 (a unit rated once still informs
      the category shares);
    - pe = 1/(q-1) * sum_k pi_k (1 - pi_k), and AC1 = (pa - pe) / (1 - pe).

    Args:
        ratings: units x raters matrix, ``None`` or NaN where a rater gave no rating.
        categories: the full label scale (see :func:`gwet_ac1_pair`); default: the labels seen.

    Returns:
        AC1 with pa and pe, ``n_units`` = n'; ``None`` when no unit has two ratings or q < 2.
    """
    rows = _matrix(ratings)
    scale = scale_of((v for row in rows for v in row if v is not None), categories)
    counts = _unit_counts(rows, scale)
    counts = counts[counts.sum(axis=1) > 0]  # a unit nobody rated says nothing
    r = counts.sum(axis=1)
    pairable = r >= 2
    n_pairable = int(pairable.sum())
    if n_pairable == 0:
        return Coefficient(AC1, None, 0, reason=NO_PAIR_MULTI)
    c, rp = counts[pairable], r[pairable]
    pa = float(np.mean((c * (c - 1)).sum(axis=1) / (rp * (rp - 1))))
    q = len(scale)
    if q < 2:
        return Coefficient(AC1, None, n_pairable, observed=pa, reason=ONE_CATEGORY_AC1)
    pi = (counts / r[:, None]).mean(axis=0)
    pe = float((pi * (1 - pi)).sum() / (q - 1))
    return Coefficient(AC1, (pa - pe) / (1 - pe), n_pairable, pa, pe)


def _fleiss_from_counts(counts: np.ndarray, note: str | None) -> Coefficient:
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

    n_units = int(counts.shape[0])
    if n_units == 0:
        return Coefficient(FLEISS, None, 0, reason=NO_PAIR_MULTI, note=note)
    m = counts[0].sum()
    p_cat = counts.sum(axis=0) / counts.sum()
    pe = float((p_cat**2).sum())
    po = float((((counts * (counts - 1)).sum(axis=1)) / (m * (m - 1))).mean())
    if np.count_nonzero(p_cat) < 2:
        return Coefficient(FLEISS, None, n_units, po, pe, reason=ONE_CATEGORY_KAPPA, note=note)
    value = float(sm_fleiss_kappa(counts, method="fleiss"))
    return Coefficient(FLEISS, value, n_units, po, pe, note=note)


def fleiss_kappa(
    table_or_ratings: Any,
    *,
    form: Literal["ratings", "counts"] = "ratings",
    categories: Sequence[Label] | None = None,
) -> Coefficient:
    """Fleiss' (1971) kappa, computed by statsmodels.

    Fleiss' kappa assumes every unit has the same number of ratings. Given raw ratings with
    missing values, it is computed over the units rated by the most common number m >= 2 of
    raters (ties go to the larger m); ``n_units`` and ``note`` say how many of the pairable
    units that was.

    Args:
        table_or_ratings: with ``form="ratings"``, a units x raters matrix (``None`` or NaN where
            a rater gave no rating); with ``form="counts"``, a units x categories table of how
            many raters put each unit in each category (every row the same total, >= 2).
        form: which of the two ``table_or_ratings`` is.
        categories: the label scale of raw ratings (unused categories do not change kappa).

    Returns:
        Kappa with P-bar (observed) and P-bar-e (chance); ``None`` when no unit qualifies or every
        rating is in one category.

    Raises:
        ValueError: an unknown ``form``, or a counts table that is not a units x categories table
            with equal row totals of at least 2.
    """
    from statsmodels.stats.inter_rater import aggregate_raters

    if form == "counts":
        counts = np.asarray(table_or_ratings, dtype=float)
        if counts.ndim != 2 or (counts < 0).any() or (counts != np.round(counts)).any():
            raise ValueError("a counts table is units x categories of non-negative whole numbers")
        totals = set(counts.sum(axis=1).tolist())
        if len(totals) > 1 or (totals and min(totals) < 2):
            raise ValueError(
                f"every unit of a counts table needs the same number (>= 2) of ratings, got {sorted(totals)}; "
                "pass raw ratings with form='ratings' to use the units that share one"
            )
        return _fleiss_from_counts(counts, None)
    if form != "ratings":
        raise ValueError(f"form is 'ratings' or 'counts', not {form!r}")

    rows = _matrix(table_or_ratings)
    rated = [[v for v in row if v is not None] for row in rows]
    sizes = Counter(len(labels) for labels in rated if len(labels) >= 2)
    if not sizes:
        return Coefficient(FLEISS, None, 0, reason=NO_PAIR_MULTI)
    m, n_used = max(sizes.items(), key=lambda item: (item[1], item[0]))
    n_pairable = sum(sizes.values())
    scale = scale_of((v for labels in rated for v in labels), categories)
    index = {c: i for i, c in enumerate(scale)}
    codes = np.array([[index[v] for v in labels] for labels in rated if len(labels) == m])
    counts, _ = aggregate_raters(codes, n_cat=len(scale))
    note = (
        f"over {n_used} of {n_pairable} units with two or more ratings: those rated by exactly {m} "
        "raters (Fleiss' kappa needs the same number of ratings per unit)"
    )
    return _fleiss_from_counts(counts, note)


def krippendorff_alpha(
    reliability_data: Any,
    level: Level = "nominal",
    categories: Sequence[Label] | None = None,
) -> Coefficient:
    """Krippendorff's alpha with missing ratings, computed by the ``krippendorff`` package.

    Args:
        reliability_data: units x raters matrix, ``None`` or NaN where a rater gave no rating.
            (The ``krippendorff`` package takes raters x units; this transposes.)
        level: ``"nominal"`` or ``"ordinal"``.
        categories: the scale, lowest first; needed for ordinal alpha over labels that are not
            numbers (numbers are ordered by value).

    Returns:
        Alpha, ``n_units`` = units with two or more ratings (the pairable ones); ``None`` when
        there is no pairable unit or no variation among pairable ratings.

    Raises:
        ValueError: an unknown level, or ordinal alpha over non-numeric labels without
            ``categories``.
    """
    import krippendorff

    if level not in ("nominal", "ordinal"):
        raise ValueError(f"level is 'nominal' or 'ordinal', not {level!r}")
    rows = _matrix(reliability_data)
    seen = {v for row in rows for v in row if v is not None}
    if level == "ordinal" and categories is None and not all(isinstance(v, numbers.Real) for v in seen):
        raise ValueError(
            "ordinal alpha over text labels needs their order: pass categories=[lowest, ..., highest]"
        )
    scale = scale_of(seen, categories)
    index = {c: i for i, c in enumerate(scale)}
    pairable = [row for row in rows if sum(v is not None for v in row) >= 2]
    if not pairable:
        return Coefficient(KRIPPENDORFF, None, 0, reason=NO_PAIR_MULTI)
    if len({v for row in pairable for v in row if v is not None}) < 2:
        return Coefficient(KRIPPENDORFF, None, len(pairable), reason=NO_VARIATION_ALPHA)
    codes = np.array([[np.nan if v is None else float(index[v]) for v in row] for row in pairable])
    value = krippendorff.alpha(
        reliability_data=codes.T,
        value_domain=np.arange(len(scale), dtype=float),
        level_of_measurement=level,
    )
    return Coefficient(KRIPPENDORFF, float(value), len(pairable))
