"""The statistics of a study's results, from maintained libraries.

Bootstrap intervals and the Wilcoxon signed-rank, exact binomial and chi-square tests from scipy,
Wilson intervals and Holm's correction from statsmodels (Krippendorff's alpha comes from
:mod:`services.agreement.stats`). Ratings of one trial are not independent, so the mean's interval
resamples trials (a cluster bootstrap) and the paired test runs over per-trial mean differences;
preference counts and their tests treat each answer as one observation, as the published studies do.

System preference (:func:`preference_tests`): an answer is a *win* for the systems it is credited to.
Two systems: the exact binomial test of one system's wins against the other's (answers credited to
both are ties, left out). Several systems: a chi-square goodness-of-fit test of the answers credited
to exactly one system against equal preference (its p-value by Monte Carlo when an expected count is
under 5), and for every pair an exact binomial test over the answers that credit one of the two and
not the other, with Holm's correction for the number of pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Set
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
N_RESAMPLES = 9_999
MIN_EXPECTED = 5  # below this expected count the chi-square approximation is not trusted


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


def chi_square_test(counts: Sequence[int], *, seed: int = 0, n_resamples: int = N_RESAMPLES) -> StatTest:
    """Chi-square goodness-of-fit of ``counts`` against equal shares (scipy).

    When an expected count is under :data:`MIN_EXPECTED` the p-value is a Monte Carlo one (draws
    from the multinomial under equal shares, seeded), since the chi-square approximation fails there.
    """
    observed = np.asarray(counts, dtype=float)
    n, k = int(observed.sum()), len(observed)
    name = "chi-square goodness of fit (equal preference)"
    if k < 2 or n == 0:
        return StatTest(name, None, None, n, "no decisive answer" if n == 0 else "needs two or more systems")
    if n / k >= MIN_EXPECTED:
        result = sps.chisquare(observed)
        return StatTest(name, float(result.statistic), float(result.pvalue), n)

    def statistic(x: np.ndarray, axis: int = -1) -> np.ndarray:
        expected = x.sum(axis=axis, keepdims=True) / x.shape[axis]
        return ((x - expected) ** 2 / expected).sum(axis=axis)

    rng = np.random.default_rng(seed)
    result = sps.monte_carlo_test(
        observed,
        # scipy asks for (resamples, k) draws; the multinomial gives k counts per draw.
        lambda size: rng.multinomial(n, [1 / k] * k, size=size[:-1]),
        statistic,
        vectorized=True,
        n_resamples=n_resamples,
        alternative="greater",
    )
    return StatTest(name + ", Monte Carlo p", float(result.statistic), float(result.pvalue), n)


@dataclass(frozen=True)
class PairTest:
    """Two systems head to head: the answers that credit one of them and not the other."""

    first: str
    second: str
    first_wins: int
    second_wins: int
    share: Share  # the first system's share of those answers, with its Wilson interval
    test: StatTest  # exact binomial against an even split
    p_holm: float | None  # the p-value after Holm's correction over every pair


def preference_tests(
    credits: Sequence[Set[str]], systems: Sequence[str], *, seed: int = 0, n_resamples: int = N_RESAMPLES
) -> tuple[StatTest, list[PairTest]]:
    """The overall test and the pairwise tests of a system-preference study (see the module doc).

    Args:
        credits: per answer, the systems it is credited to.
        systems: every system compared, in the order to report them.
    """
    pairs = []
    for a, b in combinations(systems, 2):
        wins_a = sum(1 for c in credits if a in c and b not in c)
        wins_b = sum(1 for c in credits if b in c and a not in c)
        pairs.append((a, b, wins_a, wins_b, binomial_test(wins_a, wins_a + wins_b)))
    tested = [n for n, p in enumerate(pairs) if p[4].p_value is not None]
    adjusted: dict[int, float] = {}
    if tested:
        _, corrected, _, _ = multipletests([pairs[n][4].p_value for n in tested], method="holm")
        adjusted = {n: float(p) for n, p in zip(tested, corrected, strict=True)}
    tests = [
        PairTest(a, b, wa, wb, share(a, wa, wa + wb), test, adjusted.get(n))
        for n, (a, b, wa, wb, test) in enumerate(pairs)
    ]
    if len(systems) == 2:
        return tests[0].test, tests
    sole = [next(iter(c)) for c in credits if len(c) == 1]
    overall = chi_square_test([sole.count(x) for x in systems], seed=seed, n_resamples=n_resamples)
    return overall, tests
