"""The arithmetic of triage: a query's suspicion score and its modality shortcut, from stored runs.

Everything here is computed from what ranking already stored — each ranker's top-k list per query
(item, rank, score) — and the labelled positives (qrels with a score above 0). No model runs and
nothing is read at page time.

**Consensus evidence.** Per query, each ranker's scores are standardised over its top-k list
(``z = (score - mean) / sd``); an item outside a ranker's list gets that list's lowest ``z``. An
item's evidence ``E`` is the weighted mean of its ``z`` over the rankers, each ranker weighted by
how far it agrees with the labels over the whole dataset: its mean R-precision against the
labelled positives (at least 0.01; equal weights when no ranker finds any positive). A ranker blind
to what the labels are about counts little — on the demo, CLIP text → item text weighs 0.03 and
the image-and-text hybrid 0.7 — so "several rankers agree" means the rankers that see the evidence.

**Signals**, each in [0, 1] (``σ`` the logistic function; ``u`` the unlabelled item with the most
evidence, ``p+`` and ``p-`` the labelled positives with the most and the least):

- ``false_negative = σ(2 (E(u) - E(p+)) + 1)``: an unlabelled item the rankers place level with or
  above every positive — a likely missing positive (or, far above them all, a wrong label set);
- ``wrong_positive = σ(2 (E(u) - E(p-)) - 1)``: a labelled positive the rankers place clearly
  below an unlabelled item — a likely wrong positive;
- ``bad_query``: the share of labelled positives that no ranker has in its top-k (1 for a query
  with no positive) — positives nobody finds, a likely bad query or bad labels;
- ``disagreement = 1 - |top10(image) ∩ top10(text)| / 10``: the image ranker (query text → item
  image) against the text rankers (BM25 and CLIP query text → item text, their top 10 together).

**Suspicion** ``= 0.4 false_negative + 0.4 wrong_positive + 0.15 bad_query + 0.05 disagreement``.
The two margins carry most of the weight because they are what separates planted problems from
clean queries on the demo (``bench/bench_triage.py``); the other two are rarer or noisier signals
that still lift a query whose positives nobody finds, or whose modalities disagree, above a quiet one.

**Modality shortcut** (MCMR's dual evidence, measured). A ranker *solves* a query at rank ``r``
when every labelled positive is within its top ``|P| + r - 1`` (no positive has ``r`` or more
unlabelled items above it; ``r = 1``: the positives fill the top of the list). A query is
``image``-solvable when CLIP query text → item image solves it, ``text``-solvable when BM25 or CLIP
query text → item text does, ``both`` or ``neither`` (what the benchmark's design asks for).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from db.enums import Shortcut
from services.ranking.rankers import BM25, CLIP_IMAGE, CLIP_TEXT, HYBRID

#: The rankers triage reads: the image ranker, the two text rankers and their hybrid.
TRIAGE_RANKERS = (CLIP_IMAGE, CLIP_TEXT, BM25, HYBRID)
TEXT_RANKERS = (BM25, CLIP_TEXT)
#: Weights of the signals in the suspicion score (they sum to 1).
SIGNAL_WEIGHTS = {"false_negative": 0.4, "wrong_positive": 0.4, "bad_query": 0.15, "disagreement": 0.05}
MIN_RANKER_WEIGHT = 0.01
DISAGREEMENT_DEPTH = 10

#: One ranker's list for one query: (item id, score), best first.
Hits = Sequence[tuple[int, float]]


@dataclass(frozen=True)
class Suspicion:
    """A query's suspicion score and the signals it is made of (each in [0, 1])."""

    score: float
    signals: dict[str, float]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def r_precision(hits: Hits, positives: set[int]) -> float:
    """The share of the top ``|positives|`` that are positives (0 without positives)."""
    if not positives:
        return 0.0
    return sum(item in positives for item, _ in hits[: len(positives)]) / len(positives)


def ranker_weights(per_ranker_rprec: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Each ranker's weight: its mean R-precision over the dataset's queries (see the module doc)."""
    means = {
        name: float(np.mean(values)) if len(values) else 0.0 for name, values in per_ranker_rprec.items()
    }
    if not any(means.values()):
        return dict.fromkeys(means, 1.0)
    return {name: max(mean, MIN_RANKER_WEIGHT) for name, mean in means.items()}


def _evidence(runs: Mapping[str, Hits], weights: Mapping[str, float], items: set[int]) -> dict[int, float]:
    total = sum(weights.get(name, 0.0) for name, hits in runs.items() if hits)
    evidence = dict.fromkeys(items, 0.0)
    if total == 0:
        return evidence
    for name, hits in runs.items():
        if not hits or weights.get(name, 0.0) == 0:
            continue
        scores = np.array([score for _, score in hits], dtype=np.float64)
        sd = float(scores.std()) or 1.0
        mean = float(scores.mean())
        z = {item: (score - mean) / sd for item, score in hits}
        floor = (float(scores.min()) - mean) / sd
        share = weights[name] / total
        for item in items:
            evidence[item] += share * z.get(item, floor)
    return evidence


def suspicion(runs: Mapping[str, Hits], positives: set[int], weights: Mapping[str, float]) -> Suspicion:
    """The suspicion of one query from its rankers' lists and labelled positives (module doc)."""
    listed = {item for hits in runs.values() for item, _ in hits}
    found = {item for item in positives if item in listed}
    bad = 1.0 - len(found) / len(positives) if positives else 1.0
    image = [item for item, _ in runs.get(CLIP_IMAGE, ())[:DISAGREEMENT_DEPTH]]
    text = {item for name in TEXT_RANKERS for item, _ in runs.get(name, ())[:DISAGREEMENT_DEPTH]}
    disagreement = 1.0 - len(set(image) & text) / DISAGREEMENT_DEPTH if image and text else 0.0
    evidence = _evidence(runs, weights, listed | positives)
    unlabelled = [e for item, e in evidence.items() if item not in positives]
    if not positives:
        false_negative, wrong_positive = 1.0, 0.0
    elif not unlabelled:
        false_negative, wrong_positive = 0.0, 0.0
    else:
        top = max(unlabelled)
        held = [evidence[item] for item in positives]
        false_negative = _sigmoid(2 * (top - max(held)) + 1)
        wrong_positive = _sigmoid(2 * (top - min(held)) - 1)
    signals = {
        "false_negative": false_negative,
        "wrong_positive": wrong_positive,
        "bad_query": bad,
        "disagreement": disagreement,
    }
    score = sum(SIGNAL_WEIGHTS[name] * value for name, value in signals.items())
    return Suspicion(round(score, 6), {name: round(value, 6) for name, value in signals.items()})


def solves(hits: Hits, positives: set[int], r: int) -> bool:
    """Whether a ranker's list holds every labelled positive within its top ``|positives| + r - 1``."""
    if not positives:
        return False
    top = {item for item, _ in hits[: len(positives) + r - 1]}
    return positives <= top


def shortcut(runs: Mapping[str, Hits], positives: set[int], r: int) -> Shortcut:
    """Which single modality alone solves the query at rank ``r`` (module doc)."""
    image = solves(runs.get(CLIP_IMAGE, ()), positives, r)
    text = any(solves(runs.get(name, ()), positives, r) for name in TEXT_RANKERS)
    if image and text:
        return Shortcut.BOTH
    return Shortcut.IMAGE if image else Shortcut.TEXT if text else Shortcut.NEITHER
