"""Inter-annotator agreement of many raters at once: every pair, all together, and set-level.

:func:`summarise` runs every coefficient of :mod:`services.agreement.coefficients` (percent
agreement, Cohen's and Fleiss' kappa, Krippendorff's alpha, Gwet's AC1) over a units x raters
table; :func:`set_agreement` compares raters' sets of positives per unit (Jaccard, F1). Pure
computation, no database; the conventions for missing and degenerate input are those of
:mod:`services.agreement.coefficients`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from services.agreement.coefficients import (
    NO_PAIR_TWO,
    Coefficient,
    Label,
    clean,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    gwet_ac1_pair,
    krippendorff_alpha,
    percent_agreement,
    scale_of,
    sort_key,
)


@dataclass(frozen=True)
class SetAgreement:
    """Set-level agreement over the units both raters annotated.

    Attributes:
        mean_jaccard: mean over units of |A & B| / |A | B| (1.0 for two empty sets).
        mean_f1: mean over units of 2 |A & B| / (|A| + |B|) (1.0 for two empty sets).
        n_units: units annotated by both raters.
        reason: why the means are ``None`` (no unit annotated by both).
    """

    mean_jaccard: float | None
    mean_f1: float | None
    n_units: int
    reason: str | None = None


@dataclass(frozen=True)
class PairAgreement:
    """Agreement of two raters over the units both labelled."""

    rater_a: Hashable
    rater_b: Hashable
    n_units: int
    percent: Coefficient
    cohen_kappa: Coefficient
    gwet_ac1: Coefficient


@dataclass(frozen=True)
class AgreementSummary:
    """Agreement of every pair of raters and of all raters together.

    Attributes:
        n_units: units with at least one label.
        raters: every rater, sorted.
        categories: the label scale used for AC1 (given, or every label seen, sorted).
        pairs: one entry per pair of raters, in ``raters`` order.
        fleiss_kappa: over the units rated by the most common number of raters (see its note).
        krippendorff_alpha: nominal, over every unit with two or more ratings.
        gwet_ac1: multi-rater AC1 with missing ratings.
    """

    n_units: int
    raters: tuple[Hashable, ...]
    categories: tuple[Label, ...]
    pairs: tuple[PairAgreement, ...]
    fleiss_kappa: Coefficient
    krippendorff_alpha: Coefficient
    gwet_ac1: Coefficient


# ---------------------------------------------------------------------------------------------
# Sets of positives


def set_agreement(
    sets_a: Mapping[Hashable, Iterable[Hashable]], sets_b: Mapping[Hashable, Iterable[Hashable]]
) -> SetAgreement:
    """Mean Jaccard and mean F1 of two raters' sets (e.g. of positive items) per unit.

    Only units present in both mappings (and not ``None``) count. Two empty sets score 1.0 on both
    measures: the raters agree that the unit has no positive.

    Args:
        sets_a: rater A's set per unit.
        sets_b: rater B's set per unit.

    Returns:
        The means over the shared units, ``None`` when there is none.
    """
    shared = [u for u in sets_a if u in sets_b and sets_a[u] is not None and sets_b[u] is not None]
    if not shared:
        return SetAgreement(None, None, 0, reason=NO_PAIR_TWO)
    jaccards, f1s = [], []
    for unit in shared:
        a, b = set(sets_a[unit]), set(sets_b[unit])
        both = len(a & b)
        jaccards.append(both / len(a | b) if a or b else 1.0)
        f1s.append(2 * both / (len(a) + len(b)) if a or b else 1.0)
    return SetAgreement(float(np.mean(jaccards)), float(np.mean(f1s)), len(shared))


# ---------------------------------------------------------------------------------------------
# Everything at once


def summarise(
    labels: Mapping[Hashable, Mapping[Hashable, Any]], categories: Sequence[Label] | None = None
) -> AgreementSummary:
    """Pairwise and overall agreement of every rater's labels.

    Args:
        labels: per unit, each rater's label (a rater absent, or ``None``, gave none).
        categories: the full label scale (e.g. ``("relevant", "not relevant")``); it makes AC1
            defined when only one category was used. Default: every label seen.

    Returns:
        Per pair of raters: units both labelled, percent agreement, Cohen's kappa and AC1 (over the
        shared scale). Overall: Fleiss' kappa over the units rated by the most common number of
        raters, nominal Krippendorff's alpha and multi-rater AC1 over every unit with two or more
        ratings. Degenerate input gives ``None`` values with reasons, never an error.
    """
    raters = sorted({r for by_rater in labels.values() for r in by_rater}, key=sort_key)
    rows = [[clean(by_rater.get(r)) for r in raters] for by_rater in labels.values()]
    rows = [row for row in rows if any(v is not None for v in row)]
    scale = scale_of((v for row in rows for v in row if v is not None), categories)
    pairs = []
    for (i, ra), (j, rb) in combinations(enumerate(raters), 2):
        a, b = [row[i] for row in rows], [row[j] for row in rows]
        percent = percent_agreement(a, b)
        pairs.append(
            PairAgreement(
                ra, rb, percent.n_units, percent, cohen_kappa(a, b, scale), gwet_ac1_pair(a, b, scale)
            )
        )
    return AgreementSummary(
        n_units=len(rows),
        raters=tuple(raters),
        categories=tuple(scale),
        pairs=tuple(pairs),
        fleiss_kappa=fleiss_kappa(rows, categories=scale),
        krippendorff_alpha=krippendorff_alpha(rows, "nominal", scale),
        gwet_ac1=gwet_ac1(rows, scale),
    )
