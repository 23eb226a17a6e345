"""Model-based aggregation of crowd labels: Dawid–Skene and MACE, by expectation–maximisation.

Both models read the same observations — (unit, annotator, class) triples, a unit being an item
of a query (relevant or not) or a query (approved or rejected) — and give each unit a posterior
over the classes and each annotator a competence:

- **Dawid–Skene** (Dawid & Skene 1979) gives each annotator a confusion matrix, the probability
  of each answer given each true class, and the classes a prior. Competence: the annotator's
  balanced accuracy, the mean over classes of ``confusion[k, k]`` (0.5 is chance for two classes,
  whatever the classes' balance: someone who always says yes scores 0.5, not the share of yeses). It follows crowd-kit's ``DawidSkene``
  step for step (majority-vote start, log2 posteriors, ``eps`` floor, stop when the evidence
  lower bound per observation gains less than ``tol``), and is checked against it in
  ``tests/test_aggregation.py``.
- **MACE** (Hovy et al. 2013, as Potato uses it) has each annotator either know the answer (with
  probability ``theta``, their competence) or answer by a habit of their own (``strategy``, a
  distribution over classes), whatever the truth: a rubber-stamper is found by their habit.
  Estimated by EM with add-``smoothing`` counts, started from the majority vote (crowd-kit starts
  from several random points and keeps the best; a fixed start keeps the result a function of
  the data alone).

Units whose class is known (gold) keep it: their posterior is fixed, so they anchor the
annotators' parameters (semi-supervised EM). Everything is deterministic for the same input:
observations are sorted first, and no random numbers are drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma

DAWID_SKENE = "dawid_skene"
MACE = "mace"
MODELS = (DAWID_SKENE, MACE)
EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Fit:
    """A fitted model: per unit the posterior over classes, per annotator a competence."""

    model: str
    units: tuple[object, ...]  # unit keys, in ``posteriors`` row order
    annotators: tuple[object, ...]  # annotator keys, in ``competence`` order
    posteriors: np.ndarray  # (units, classes)
    competence: np.ndarray  # (annotators,)
    priors: np.ndarray  # (classes,)
    iterations: int
    votes: tuple[int, ...] = ()  # observations per annotator, in ``annotators`` order

    def posterior(self, unit: object, k: int = 1) -> float | None:
        """P(class ``k``) of a unit (None: the unit had no observation)."""
        row = self._index.get(unit)
        return None if row is None else float(self.posteriors[row, k])

    def competence_of(self) -> dict[object, float]:
        return {a: float(c) for a, c in zip(self.annotators, self.competence, strict=True)}

    def votes_of(self) -> dict[object, int]:
        return dict(zip(self.annotators, self.votes, strict=True))

    @property
    def _index(self) -> dict[object, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {u: n for n, u in enumerate(self.units)}
            object.__setattr__(self, "_index_cache", cached)
        return cached


class _Data:
    """Observations as index arrays: unit, annotator, class."""

    def __init__(
        self,
        triples: Iterable[tuple[object, object, int]],
        n_classes: int,
        weights: Mapping[object, float] | None = None,
    ) -> None:
        rows = sorted(set(triples), key=lambda t: (repr(t[0]), repr(t[1]), t[2]))
        self.units = tuple(dict.fromkeys(sorted({t[0] for t in rows}, key=repr)))
        self.annotators = tuple(sorted({t[1] for t in rows}, key=repr))
        unit_ix = {u: n for n, u in enumerate(self.units)}
        ann_ix = {a: n for n, a in enumerate(self.annotators)}
        self.task = np.array([unit_ix[t[0]] for t in rows], dtype=np.int64)
        self.worker = np.array([ann_ix[t[1]] for t in rows], dtype=np.int64)
        self.label = np.array([t[2] for t in rows], dtype=np.int64)
        self.n_classes = n_classes
        if rows and (self.label.min() < 0 or self.label.max() >= n_classes):
            raise ValueError(f"classes must be 0 .. {n_classes - 1}")
        self.unit_ix = unit_ix
        # A unit standing for several identical ones (same voters, same answers) counts that often.
        self.unit_weight = np.array([float((weights or {}).get(u, 1.0)) for u in self.units])
        self.obs_weight = self.unit_weight[self.task]

    def votes(self) -> tuple[int, ...]:
        counts = np.bincount(self.worker, weights=self.obs_weight, minlength=len(self.annotators))
        return tuple(round(float(n)) for n in counts)

    def prior(self, probas: np.ndarray) -> np.ndarray:
        return (probas * self.unit_weight[:, None]).sum(axis=0) / self.unit_weight.sum()

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.units), len(self.annotators), self.n_classes

    def majority(self) -> np.ndarray:
        """Each unit's share of votes per class (crowd-kit's MajorityVote probabilities)."""
        n_units, _, k = self.shape
        counts = np.zeros((n_units, k))
        np.add.at(counts, (self.task, self.label), 1.0)
        return counts / counts.sum(axis=1, keepdims=True)

    def clamp(self, probas: np.ndarray, known: Mapping[object, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of known units set to their class; returns the probas and the mask of known rows."""
        mask = np.zeros(len(self.units), dtype=bool)
        for unit, k in (known or {}).items():
            row = self.unit_ix.get(unit)
            if row is not None:
                probas[row] = np.eye(self.n_classes)[k]
                mask[row] = True
        return probas, mask


def _normalise(log_scores: np.ndarray) -> np.ndarray:
    scaled = 2.0 ** (log_scores - log_scores.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def dawid_skene(
    triples: Iterable[tuple[object, object, int]],
    n_classes: int = 2,
    *,
    known: Mapping[object, int] | None = None,
    weights: Mapping[object, float] | None = None,
    n_iter: int = 100,
    tol: float = 1e-5,
) -> Fit:
    """Fit Dawid–Skene to (unit, annotator, class) observations (see the module doc); ``weights``
    lets one unit stand for several identical ones."""
    d = _Data(triples, n_classes, weights)
    n_units, n_workers, k = d.shape
    if n_units == 0:
        return Fit(DAWID_SKENE, (), (), np.zeros((0, k)), np.zeros(0), np.full(k, 1 / k), 0)
    probas, fixed = d.clamp(d.majority(), known)
    saved = probas[fixed].copy()

    def m_step(p: np.ndarray) -> np.ndarray:
        # errors[w, true, observed]: sum over the worker's observations of P(true) at that unit.
        errors = np.zeros((n_workers, k, k))
        np.add.at(errors, (d.worker, slice(None), d.label), p[d.task] * d.obs_weight[:, None])
        seen = np.zeros((n_workers, k), dtype=bool)
        seen[d.worker, d.label] = True
        errors = np.where(seen[:, None, :], np.clip(errors, EPS, None), 0.0)
        return errors / errors.sum(axis=2, keepdims=True)

    def e_step(priors: np.ndarray, errors: np.ndarray) -> np.ndarray:
        logs = np.zeros((n_units, k))
        with np.errstate(divide="ignore"):
            np.add.at(logs, d.task, np.log2(errors[d.worker, :, d.label]))
            logs += np.log2(np.clip(priors, EPS, None))
        p = _normalise(logs)
        p[fixed] = saved
        return p

    def lower_bound(p: np.ndarray, priors: np.ndarray, errors: np.ndarray) -> float:
        # As crowd-kit computes it: the prior is counted once per observation, not per unit.
        with np.errstate(divide="ignore", invalid="ignore"):
            per_obs = (np.log(errors[d.worker, :, d.label]) + np.log(np.clip(priors, EPS, None))) * p[d.task]
        clipped = np.clip(p, EPS, None)
        entropy = (clipped * np.log(clipped)).sum(axis=1) * d.unit_weight
        return float(np.nansum(per_obs * d.obs_weight[:, None]) - entropy.sum())

    priors = d.prior(probas)
    errors = m_step(probas)
    loss, iterations = -np.inf, 0
    for iterations in range(1, n_iter + 1):  # noqa: B007
        probas = e_step(priors, errors)
        priors = d.prior(probas)
        errors = m_step(probas)
        new_loss = lower_bound(probas, priors, errors) / d.obs_weight.sum()
        if new_loss - loss < tol:
            break
        loss = new_loss
    competence = np.einsum("wkk->wk", errors).mean(axis=1)
    return Fit(DAWID_SKENE, d.units, d.annotators, probas, competence, priors, iterations, d.votes())


def mace(
    triples: Iterable[tuple[object, object, int]],
    n_classes: int = 2,
    *,
    known: Mapping[object, int] | None = None,
    weights: Mapping[object, float] | None = None,
    n_iter: int = 50,
    tol: float = 1e-7,
    alpha: float = 0.5,
    beta: float = 0.5,
    strategy_prior: float = 10.0,
    learn_prior: bool = False,
) -> Fit:
    """Fit MACE to (unit, annotator, class) observations by variational Bayes (see the module doc).

    ``alpha`` and ``beta`` are the Beta prior's pseudo-counts of guessing and of knowing,
    ``strategy_prior`` the Dirichlet pseudo-count of each class in a habit (crowd-kit's defaults).
    Competence is the annotator's normalised weight of knowing, ``know / (know + guess)``.
    """
    d = _Data(triples, n_classes, weights)
    n_units, n_workers, k = d.shape
    if n_units == 0:
        return Fit(MACE, (), (), np.zeros((0, k)), np.zeros(0), np.full(k, 1 / k), 0)
    probas, fixed = d.clamp(d.majority(), known)
    saved = probas[fixed].copy()
    hit = np.eye(k)[d.label]  # (observations, classes): the answer is that class

    def counts(
        p: np.ndarray, know: np.ndarray, guess: np.ndarray, habit: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """Expected counts of knowing and guessing per annotator, and of each guessed class."""
        g = guess[d.worker] * habit[d.worker, d.label]
        kn = know[d.worker]
        p_knew = p[d.task, d.label] * kn / (g + kn) * d.obs_weight
        p_guessed = (p[d.task] * (g[:, None] / (g[:, None] + kn[:, None] * hit))).sum(axis=1) * d.obs_weight
        knew = np.bincount(d.worker, weights=p_knew, minlength=n_workers)
        guessed = np.bincount(d.worker, weights=p_guessed, minlength=n_workers)
        habits = np.zeros((n_workers, k))
        np.add.at(habits, (d.worker, d.label), p_guessed)
        return knew, guessed, habits

    def m_step(knew: np.ndarray, guessed: np.ndarray, habits: np.ndarray) -> tuple[np.ndarray, ...]:
        """Variational M-step: exp(digamma) of counts plus prior pseudo-counts, over their total's."""
        total = digamma(knew + guessed + alpha + beta)
        know, guess = np.exp(digamma(knew + beta) - total), np.exp(digamma(guessed + alpha) - total)
        habit = np.exp(
            digamma(habits + strategy_prior) - digamma((habits + strategy_prior).sum(axis=1))[:, None]
        )
        return know, guess, habit

    def e_step(know: np.ndarray, guess: np.ndarray, habit: np.ndarray) -> tuple[np.ndarray, float]:
        # P(answer | truth) = know * [answer == truth] + guess * habit[answer]; the truth's prior is
        # uniform (MACE's), or learned from the last posteriors (``learn_prior``).
        like = know[d.worker, None] * hit + (guess[d.worker] * habit[d.worker, d.label])[:, None]
        logs = np.zeros((n_units, k))
        np.add.at(logs, d.task, np.log2(like))
        logs += np.log2(np.clip(d.prior(probas), EPS, None)) if learn_prior else -np.log2(k)
        top = logs.max(axis=1, keepdims=True)
        evidence = float(((top[:, 0] + np.log2(np.exp2(logs - top).sum(axis=1))) * d.unit_weight).sum())
        p = _normalise(logs)
        p[fixed] = saved
        return p, evidence

    # Start from the majority vote: expected counts as if each annotator knew half the time.
    know, guess, habit = np.full(n_workers, 0.5), np.full(n_workers, 0.5), np.full((n_workers, k), 1 / k)
    know, guess, habit = m_step(*counts(probas, know, guess, habit))
    evidence, iterations = -np.inf, 0
    for iterations in range(1, n_iter + 1):  # noqa: B007
        probas, new_evidence = e_step(know, guess, habit)
        know, guess, habit = m_step(*counts(probas, know, guess, habit))
        if abs(new_evidence - evidence) < tol * d.obs_weight.sum():
            break
        evidence = new_evidence
    competence = know / (know + guess)
    return Fit(MACE, d.units, d.annotators, probas, competence, d.prior(probas), iterations, d.votes())


def fit(model: str, triples: Iterable[tuple[object, object, int]], n_classes: int = 2, **kw: object) -> Fit:
    """Fit ``model`` (:data:`DAWID_SKENE` or :data:`MACE`)."""
    if model == DAWID_SKENE:
        return dawid_skene(triples, n_classes, **kw)  # type: ignore[arg-type]
    if model == MACE:
        return mace(triples, n_classes, **kw)  # type: ignore[arg-type]
    raise ValueError(f"unknown model {model!r}; choose {' or '.join(MODELS)}")
