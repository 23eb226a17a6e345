"""The statistics of a study's results, from maintained libraries.

Bootstrap intervals and the Wilcoxon signed-rank and binomial tests from scipy, Wilson intervals
from statsmodels (Krippendorff's alpha comes from :mod:`services.agreement.stats`). Ratings of one
trial are not independent, so the mean's interval resamples trials (a cluster bootstrap) and the
paired test runs over per-trial mean differences; preference counts and their binomial test treat
each answer as one observation, as the published studies do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
N_RESAMPLES = 9_999


@dataclass(frozen=True)
class Share:
    """A count out of ``n`` with its rate and Wilson interval."""

    label: str
    count: int
    n: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class StatTest:
    """A test's statistic and two-sided p-value; ``reason`` says why they are missing."""

    name: str
    statistic: float | None
    p_value: float | None
    n: int
    reason: str | None = None


def mean_ci(
    sums: Sequence[float],
    counts: Sequence[float],
    *,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """Bootstrap (BCa, scipy) interval of a mean over units that each hold several values.

    Units (trials) are resampled whole, so ratings of one trial stay together; the statistic is
    the mean of all values, ``sum(sums) / sum(counts)``. None with fewer than two units.
    """
    sums_a, counts_a = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
    if len(sums_a) < 2:
        return None
    if np.ptp(sums_a / counts_a) == 0:  # no variation: the bootstrap has nothing to resample
        value = float(sums_a.sum() / counts_a.sum())
        return value, value

    def ratio(x: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sum(x, axis=axis) / np.sum(c, axis=axis)

    result = sps.bootstrap(
        (sums_a, counts_a),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa undefined (e.g. two units): percentile
        low, high = np.percentile(
            result.bootstrap_distribution, [50 * (1 - confidence), 50 * (1 + confidence)]
        )
    return float(low), float(high)


def wilson(count: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of ``count / n`` (statsmodels); None when ``n`` is 0."""
    if n <= 0:
        return None
    low, high = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def share(label: str, count: int, n: int) -> Share:
    """``count`` of ``n`` as a :class:`Share`: its rate and Wilson interval (None when ``n`` is 0)."""
    interval = wilson(count, n)
    return Share(
        label,
        count,
        n,
        count / n if n else None,
        interval[0] if interval else None,
        interval[1] if interval else None,
    )


def binomial_test(k: int, n: int, p: float = 0.5) -> StatTest:
    """Exact two-sided binomial test of ``k`` successes in ``n`` against ``p`` (scipy)."""
    if n <= 0:
        return StatTest("binomial test", None, None, 0, "no decisive answer")
    result = sps.binomtest(k, n, p)
    return StatTest("binomial test", k / n, float(result.pvalue), n)


def wilcoxon_test(differences: Sequence[float]) -> StatTest:
    """Wilcoxon signed-rank test of paired differences against 0 (scipy; zero differences dropped)."""
    diffs = np.asarray(differences, dtype=float)
    nonzero = int(np.count_nonzero(diffs))
    if nonzero == 0:
        return StatTest("Wilcoxon signed-rank", None, None, len(diffs), "every paired difference is 0")
    result = sps.wilcoxon(diffs)
    return StatTest("Wilcoxon signed-rank", float(result.statistic), float(result.pvalue), len(diffs))
