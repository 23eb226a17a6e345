"""Dawid–Skene and MACE: checked against crowd-kit 1.4.2 on the same data, deterministic, weighted units
equal to repeated ones, recorded in the export manifest, and compared with majority on a simulated crowd.

The fixtures are crowd-kit's outputs on ``tests/crowd_data.py``'s data, computed in a throwaway
environment (``python3.11 -m venv /tmp/ck && /tmp/ck/bin/pip install -r requirements.txt crowd-kit``;
crowd-kit itself is not a dependency: see services/cleaning/aggregation.py): ``DawidSkene(n_iter=100,
tol=1e-5)`` and ``MACE(random_state=0)`` (variational Bayes), posteriors rounded to 6 places; a
competence of MACE is ``spamming_[w, 1] / spamming_[w].sum()`` (``ds_competence``, crowd-kit's
prior-weighted accuracy, is kept for reference: the app reports balanced accuracy instead).
MACE here starts from the majority vote where crowd-kit starts from a seeded random point, so its
posteriors agree to within a few hundredths rather than exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.cleaning.aggregation import dawid_skene, mace
from tests.crowd_data import HAND, simulated

CROWD_KIT = {
    "hand": {
        "ds_competence": {"a": 0.999877, "b": 0.800034, "c": 0.699936, "d": 0.500123},
        "ds_head": [0.999999, 4.9e-05, 1.0, 0.000787, 0.999998, 0.000295, 1.0, 4.9e-05, 0.999999, 4.9e-05],
        "ds_iterations": 17,
        "ds_labels": "1010101010",
        "ds_priors": [0.499877, 0.500123],
        "ds_sum": 5.00122,
        "mace_competence": {"a": 0.961064, "b": 0.613886, "c": 0.405897, "d": 0.242342},
        "mace_head": [
            0.99411,
            0.003496,
            0.998969,
            0.059555,
            0.981719,
            0.01975,
            0.998969,
            0.003496,
            0.99411,
            0.003496,
        ],
        "mace_labels": "1010101010",
    },
    "sim": {
        "ds_competence": {"0": 0.922861, "1": 0.847592, "2": 0.45215, "3": 0.719355, "4": 0.692106},
        "ds_head": [
            0.022113,
            0.795248,
            0.078696,
            0.961861,
            0.009005,
            0.299401,
            0.932613,
            0.715406,
            0.965221,
            0.349601,
            0.961861,
            0.994996,
        ],
        "ds_iterations": 100,
        "ds_labels": "0101001110110011000011011100100001101000010010000101001010000000000000100001011011101100100000100001111001100000000100000010111101101010011001100011000110010100001010000100000010010110000000111100000010000010001000010000000000010000000101101010000000000101001000001010110000010100000100011011111110001001001010001001000100000010001110110001110011001000101000001101111110010101110011010010001000000011",
        "ds_priors": [0.617901, 0.382099],
        "ds_sum": 152.83945,
        "mace_competence": {"0": 0.774006, "1": 0.628467, "2": 0.012287, "3": 0.461011, "4": 0.382287},
        "mace_head": [
            0.04785,
            0.863962,
            0.1234,
            0.965718,
            0.022449,
            0.415278,
            0.951511,
            0.77242,
            0.969954,
            0.462433,
            0.965718,
            0.99567,
        ],
        "mace_labels": "0101001110110011000011011100110001101000010010100101001010000000010100100001011011101100100000100001111001100001000100000010111101101010011001100111000110010100001010000100000010010110000000111100000010000010001100010000100000010000010111111010000000000101101000011010110000010100000110011111111110001001001111001001101100101010001110110001110011001000101001001101111110010111110011010010001010000011",
    },
    "sim5": {
        "ds_competence": {"0": 0.907216, "1": 0.889009, "2": 0.353573, "3": 0.677783, "4": 0.724342},
        "ds_head": [
            0.000887,
            0.037693,
            0.007666,
            0.000887,
            0.000887,
            0.005293,
            0.995199,
            0.000887,
            0.000887,
            0.000887,
            0.995199,
            0.037693,
        ],
        "ds_iterations": 34,
        "ds_labels": "000000100010100100001101111000000001000001010000001100001001100001110110101100110000100010100011001000000001001000100001101010011011000001110100010000001110001000001000100001000000001010000000001010010000110001000000100000000110001101100000001101000011000111001000010110010000000001001000000010010000",
        "ds_priors": [0.701631, 0.298369],
        "ds_sum": 89.51078,
        "mace_competence": {"0": 0.749457, "1": 0.755097, "2": 0.00416, "3": 0.373183, "4": 0.446598},
        "mace_head": [
            0.005443,
            0.153176,
            0.03621,
            0.005443,
            0.005443,
            0.034918,
            0.998316,
            0.005443,
            0.005443,
            0.005443,
            0.998316,
            0.153176,
        ],
        "mace_labels": "000000100010100100001101111000000001000001010000001100001001100111110110101100110100100010100011101000000011001000101101111110011011001101110100010000001110001000001000100001000000001010000000001010010000110011000000100000000110001101100000001101100011000111001001010110010110000001001000000010010000",
    },
}


DATA = {"hand": (None, HAND), "sim": simulated(7, 400), "sim5": simulated(11, 300, per_unit=5)}


@pytest.mark.parametrize("name", sorted(DATA))
def test_dawid_skene_equals_crowd_kit(name: str) -> None:
    expected = CROWD_KIT[name]
    triples = DATA[name][1]
    units = sorted({t[0] for t in triples})
    fit = dawid_skene(triples)
    p = [fit.posterior(u) for u in units]
    assert fit.iterations == expected["ds_iterations"]
    assert p[:12] == pytest.approx(expected["ds_head"], abs=2e-6)
    assert sum(p) == pytest.approx(expected["ds_sum"], abs=1e-4)
    assert "".join("1" if x > 0.5 else "0" for x in p) == expected["ds_labels"]
    assert list(fit.priors) == pytest.approx(expected["ds_priors"], abs=2e-6)


@pytest.mark.parametrize("name", sorted(DATA))
def test_mace_agrees_with_crowd_kit(name: str) -> None:
    expected = CROWD_KIT[name]
    triples = DATA[name][1]
    units = sorted({t[0] for t in triples})
    fit = mace(triples)
    p = [fit.posterior(u) for u in units]
    assert "".join("1" if x > 0.5 else "0" for x in p) == expected["mace_labels"]
    assert p[:12] == pytest.approx(expected["mace_head"], abs=0.03)
    ours = {str(k): v for k, v in fit.competence_of().items()}
    if name == "hand":  # d always says 1: crowd-kit's random start and ours settle d differently
        assert ours["a"] > ours["b"] > ours["c"] > ours["d"]
        assert [ours[w] for w in "abc"] == pytest.approx(
            [expected["mace_competence"][w] for w in "abc"], abs=0.01
        )
    else:
        assert ours == pytest.approx(expected["mace_competence"], abs=0.01)


def test_models_are_deterministic_and_order_free() -> None:
    _, triples = DATA["sim"]
    for model in (dawid_skene, mace):
        a, b = model(triples), model(list(reversed(triples)))
        assert np.array_equal(a.posteriors, b.posteriors) and np.array_equal(a.competence, b.competence)


def test_a_weighted_unit_counts_as_that_many_copies() -> None:
    triples = [(0, "a", 1), (0, "b", 1), (1, "a", 0), (1, "b", 1), (2, "a", 0), (2, "b", 0)]
    copies = triples + [(("copy", n), w, x) for n in range(2) for u, w, x in triples if u == 2]
    for model in (dawid_skene, mace):
        weighted, repeated = model(triples, weights={2: 3}), model(copies)
        assert weighted.posterior(1) == pytest.approx(repeated.posterior(1), abs=1e-12)
        assert weighted.competence == pytest.approx(repeated.competence, abs=1e-12)


def test_known_units_keep_their_class_and_anchor_the_annotators() -> None:
    truth, triples = DATA["sim"]
    known = {u: t for u, t in truth.items() if u < 40}
    for model in (dawid_skene, mace):
        fit = model(triples, known=known)
        assert all(fit.posterior(u, t) == 1.0 for u, t in known.items())
    # The rubber-stamper (worker 2) is found out by the known units.
    assert dawid_skene(triples, known=known).competence_of()[2] < 0.6
