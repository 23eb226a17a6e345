"""Agreement statistics against published worked examples, degenerate input and properties.

Sources of the worked examples:

- Cohen's kappa: Cohen (1960) 2x2 example as on Wikipedia "Cohen's kappa" (20 yes/yes, 5 yes/no,
  10 no/yes, 15 no/no): p_o = 0.7, p_e = 0.5, kappa = 0.4.
- Fleiss' kappa: Wikipedia "Fleiss' kappa" worked example (10 subjects, 14 raters, 5 categories):
  P-bar = 0.378, P-bar-e = 0.213, kappa = 0.210. statsmodels' ``fleiss_kappa`` docs cite it.
- Krippendorff's alpha: Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the
  4 observers x 12 units example with missing values: nominal 0.743, ordinal 0.815; and the
  Wikipedia "Krippendorff's alpha" example (3 coders x 15 units): nominal 0.691. Both appear,
  with these values, in the ``krippendorff`` package's ``alpha`` docstring.
- Gwet's AC1, many raters with missing ratings: Gwet, Handbook of Inter-Rater Reliability, 4th
  ed. (2014), the same 4 raters x 12 units data (p. 120 there, categories 1-5): p_a = 0.818,
  p_e = 0.190, AC1 = 0.775 (also the output of Gwet's irrCAC R package, ``cac.raw4raters``).
- Gwet's AC1, two raters: Handbook, 4th ed., 3x3 table of 100 pregnancies classified by two
  abstractors (irrCAC's ``cont3x3abstractors``): AC1 = 0.849.
- The kappa paradox table (118 yes/yes, 5 yes/no, 2 no/yes, 0 no/no; Feinstein & Cicchetti
  1990, discussed in Gwet 2008): the values below are worked by hand in the test from the
  formulas, not read from a printed table.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.agreement.coefficients import (
    Coefficient,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    gwet_ac1_pair,
    krippendorff_alpha,
    percent_agreement,
)
from services.agreement.stats import AgreementSummary, set_agreement, summarise


def _from_table(cells: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    """Two raters' label lists from a contingency table {(a_label, b_label): count}."""
    a: list[str] = []
    b: list[str] = []
    for (x, y), n in cells.items():
        a += [x] * n
        b += [y] * n
    return a, b


# Krippendorff (2011) / Gwet's Handbook p. 120: 12 units (rows) x 4 raters (columns).
FOUR_RATERS = [
    [1, 1, None, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [None, 5, 5, 5],
    [None, None, 1, 1],
    [None, None, 3, None],
]

# Wikipedia "Fleiss' kappa": 10 subjects x 5 categories, 14 raters each.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


# ---------------------------------------------------------------------------------------------
# Published worked examples


def test_cohen_kappa_wikipedia_example() -> None:
    a, b = _from_table({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    kappa = cohen_kappa(a, b)
    assert kappa.value == pytest.approx(0.4)
    assert kappa.observed == pytest.approx(0.7)
    assert kappa.expected == pytest.approx(0.5)
    assert kappa.n_units == 50
    assert percent_agreement(a, b).value == pytest.approx(0.7)


def test_fleiss_kappa_wikipedia_example() -> None:
    kappa = fleiss_kappa(FLEISS_TABLE, form="counts")
    assert kappa.value == pytest.approx(0.210, abs=5e-4)
    assert kappa.observed == pytest.approx(0.378, abs=5e-4)
    assert kappa.expected == pytest.approx(0.213, abs=5e-4)
    assert kappa.n_units == 10


def test_fleiss_kappa_from_raw_ratings_matches_the_table() -> None:
    # The same example as raw ratings: unit i gets count[i][k] ratings of category k.
    ratings = [[k for k, n in enumerate(row) for _ in range(n)] for row in FLEISS_TABLE]
    kappa = fleiss_kappa(ratings)
    assert kappa.value == pytest.approx(fleiss_kappa(FLEISS_TABLE, form="counts").value)
    assert kappa.n_units == 10
    assert "10 of 10" in (kappa.note or "")


def test_krippendorff_alpha_krippendorff_2011_example() -> None:
    assert krippendorff_alpha(FOUR_RATERS, "nominal").value == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(FOUR_RATERS, "ordinal").value == pytest.approx(0.815, abs=5e-4)
    # Unit 12 has a single rating: it is not pairable.
    assert krippendorff_alpha(FOUR_RATERS).n_units == 11


def test_krippendorff_alpha_ordinal_text_labels_need_and_use_their_order() -> None:
    words = ["very low", "low", "mid", "high", "very high"]
    as_words = [[None if v is None else words[v - 1] for v in row] for row in FOUR_RATERS]
    assert krippendorff_alpha(as_words, "ordinal", words).value == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(as_words, "nominal").value == pytest.approx(0.743, abs=5e-4)
    with pytest.raises(ValueError, match="categories"):
        krippendorff_alpha(as_words, "ordinal")


def test_krippendorff_alpha_wikipedia_example_with_nan() -> None:
    nan = math.nan
    coders_by_unit = np.array(
        [
            [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
            [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
            [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
        ]
    )
    alpha = krippendorff_alpha(coders_by_unit.T, "nominal")  # this module takes units x raters
    assert alpha.value == pytest.approx(0.691, abs=5e-4)


def test_gwet_ac1_many_raters_handbook_example() -> None:
    ac1 = gwet_ac1(FOUR_RATERS)
    assert ac1.value == pytest.approx(0.775, abs=5e-4)
    assert ac1.observed == pytest.approx(0.818, abs=5e-4)  # 9 of the 11 pairable units agree fully
    assert ac1.expected == pytest.approx(0.190, abs=5e-4)
    assert ac1.n_units == 11


def test_gwet_ac1_two_raters_handbook_3x3_example() -> None:
    a, b = _from_table(
        {
            ("ectopic", "ectopic"): 13,
            ("AIU", "AIU"): 20,
            ("AIU", "NIU"): 7,
            ("NIU", "AIU"): 4,
            ("NIU", "NIU"): 56,
        }
    )
    ac1 = gwet_ac1_pair(a, b)
    assert ac1.value == pytest.approx(0.849, abs=5e-4)
    # By hand: p_a = 0.89; pi = (0.13, 0.255, 0.615); p_e = sum pi(1 - pi) / 2 = 0.269925.
    assert ac1.observed == pytest.approx(0.89)
    assert ac1.expected == pytest.approx(0.269925)


def test_kappa_paradox_table_ac1_stays_high() -> None:
    a, b = _from_table({("yes", "yes"): 118, ("yes", "no"): 5, ("no", "yes"): 2, ("no", "no"): 0})
    # By hand: n = 125, p_a = 118/125 = 0.944. Marginals: A yes 123/125 = 0.984, B yes 120/125 = 0.96.
    # Kappa: p_e = 0.984 * 0.96 + 0.016 * 0.04 = 0.94528, kappa = (0.944 - 0.94528) / 0.05472 = -0.02339.
    # AC1: pi_yes = (0.984 + 0.96) / 2 = 0.972, p_e = 2 * 0.972 * 0.028 / (2 - 1) = 0.054432,
    #      AC1 = (0.944 - 0.054432) / 0.945568 = 0.94078.
    assert percent_agreement(a, b).value == pytest.approx(0.944)
    kappa = cohen_kappa(a, b)
    assert kappa.expected == pytest.approx(0.94528)
    assert kappa.value == pytest.approx((0.944 - 0.94528) / (1 - 0.94528))
    assert kappa.value == pytest.approx(-0.02339, abs=1e-5)
    ac1 = gwet_ac1_pair(a, b)
    assert ac1.expected == pytest.approx(0.054432)
    assert ac1.value == pytest.approx(0.94078, abs=1e-5)
    # The multi-rater formula on the same complete data gives the same AC1.
    assert gwet_ac1(list(zip(a, b, strict=True))).value == pytest.approx(ac1.value)


def test_summarise_reproduces_the_overall_examples() -> None:
    labels = {
        unit: {f"r{j}": v for j, v in enumerate(row) if v is not None} for unit, row in enumerate(FOUR_RATERS)
    }
    summary = summarise(labels)
    assert isinstance(summary, AgreementSummary)
    assert summary.n_units == 12
    assert summary.raters == ("r0", "r1", "r2", "r3")
    assert summary.categories == (1, 2, 3, 4, 5)
    assert summary.gwet_ac1.value == pytest.approx(0.775, abs=5e-4)
    assert summary.krippendorff_alpha.value == pytest.approx(0.743, abs=5e-4)
    # Fleiss: 8 units have all 4 ratings, 2 have 3 and 1 has 2; the 8 are used.
    assert summary.fleiss_kappa.n_units == 8
    assert "8 of 11" in (summary.fleiss_kappa.note or "")
    complete = [row for row in FOUR_RATERS if None not in row]
    assert summary.fleiss_kappa.value == pytest.approx(fleiss_kappa(complete).value)
    assert len(summary.pairs) == 6
    first = summary.pairs[0]
    assert (first.rater_a, first.rater_b, first.n_units) == ("r0", "r1", 9)
    assert first.percent.value == pytest.approx(8 / 9)  # they differ on unit 6 only
    assert first.cohen_kappa.value == pytest.approx(
        cohen_kappa([row[0] for row in FOUR_RATERS], [row[1] for row in FOUR_RATERS]).value
    )


# ---------------------------------------------------------------------------------------------
# Degenerate input: a value where the formula gives one, else None with a reason


def _undefined(c: Coefficient) -> bool:
    return c.value is None and bool(c.reason)


def test_one_category_only() -> None:
    a = b = ["not relevant"] * 5
    assert percent_agreement(a, b).value == 1.0
    assert _undefined(cohen_kappa(a, b))
    assert _undefined(gwet_ac1_pair(a, b))
    # Naming the scale makes AC1 defined: its chance term is 0, so AC1 = p_a = 1.
    assert gwet_ac1_pair(a, b, categories=["relevant", "not relevant"]).value == 1.0
    matrix = [["x", "x", None]] * 4
    assert _undefined(fleiss_kappa(matrix))
    assert _undefined(krippendorff_alpha(matrix))
    assert _undefined(gwet_ac1(matrix))
    assert gwet_ac1(matrix, categories=["x", "y"]).value == 1.0
    assert _undefined(fleiss_kappa([[3, 0], [3, 0]], form="counts"))


def test_single_unit() -> None:
    assert percent_agreement(["a"], ["b"]).value == 0.0
    assert cohen_kappa(["a"], ["b"]).value == 0.0  # p_o = 0, p_e = 1*0 + 0*1 = 0
    assert gwet_ac1_pair(["a"], ["b"]).value == pytest.approx(-1.0)  # p_a = 0, p_e = 0.5
    assert fleiss_kappa([["a", "b"]]).value == pytest.approx(-1.0)  # P = 0, P_e = 0.5
    assert krippendorff_alpha([["a", "b"]]).value == pytest.approx(0.0)  # D_o = D_e = 1
    assert _undefined(cohen_kappa(["a"], ["a"]))
    assert gwet_ac1_pair(["a"], ["a"], categories=["a", "b"]).value == 1.0


def test_disjoint_raters() -> None:
    summary = summarise({"q1": {"ann": 1}, "q2": {"bob": 0}, "q3": {"ann": 0}})
    (pair,) = summary.pairs
    assert pair.n_units == 0
    assert all(_undefined(c) for c in (pair.percent, pair.cohen_kappa, pair.gwet_ac1))
    assert all(_undefined(c) for c in (summary.fleiss_kappa, summary.krippendorff_alpha, summary.gwet_ac1))
    assert percent_agreement([1, None], [None, 0]).n_units == 0


def test_empty_and_single_rater_input() -> None:
    for labels in ({}, {"q1": {"ann": 1}, "q2": {"ann": 0}}, {"q1": {"ann": None}}):
        summary = summarise(labels)
        assert summary.pairs == ()
        assert _undefined(summary.gwet_ac1)
        assert _undefined(summary.fleiss_kappa)
        assert _undefined(summary.krippendorff_alpha)
    assert summarise({"q1": {"ann": None}}).n_units == 0


def test_missing_ratings_as_none_or_nan_are_the_same() -> None:
    with_nan = np.array([[np.nan if v is None else v for v in row] for row in FOUR_RATERS], dtype=float)
    assert gwet_ac1(with_nan).value == pytest.approx(gwet_ac1(FOUR_RATERS).value)
    assert krippendorff_alpha(with_nan).value == pytest.approx(krippendorff_alpha(FOUR_RATERS).value)
    assert percent_agreement([1, math.nan, 0], [1, 0, None]).n_units == 1


def test_malformed_input_raises() -> None:
    with pytest.raises(ValueError, match="length"):
        cohen_kappa([1, 0], [1])
    with pytest.raises(ValueError, match="not in categories"):
        gwet_ac1_pair([1, 2], [1, 1], categories=[0, 1])
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 1], [1, 1]], form="counts")
    with pytest.raises(ValueError, match="form"):
        fleiss_kappa(FLEISS_TABLE, form="table")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(FOUR_RATERS, "interval")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ in length"):
        gwet_ac1([[1, 2], [1]])


def test_set_agreement() -> None:
    a = {"q1": {"i1", "i2"}, "q2": set(), "q3": {"i9"}, "only_a": {"i1"}}
    b = {"q1": {"i2", "i3"}, "q2": set(), "q3": set(), "only_b": set()}
    result = set_agreement(a, b)
    assert result.n_units == 3
    # q1: J = 1/3, F1 = 2*1/4; q2: both empty, 1 and 1 by definition; q3: 0 and 0.
    assert result.mean_jaccard == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert result.mean_f1 == pytest.approx((0.5 + 1 + 0) / 3)
    empty = set_agreement({"q1": {"i"}}, {"q2": {"i"}})
    assert (empty.mean_jaccard, empty.mean_f1, empty.n_units) == (None, None, 0)
    assert empty.reason


# ---------------------------------------------------------------------------------------------
# Properties

LABELS = st.sampled_from(["rel", "non", "unsure"])


@st.composite
def paired_labels(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    n = draw(st.integers(1, 40))
    return draw(st.lists(LABELS, min_size=n, max_size=n)), draw(st.lists(LABELS, min_size=n, max_size=n))


@settings(max_examples=60, deadline=None)
@given(st.lists(LABELS, min_size=2, max_size=40).filter(lambda xs: len(set(xs)) >= 2))
def test_identical_raters_agree_perfectly(labels: list[str]) -> None:
    assert percent_agreement(labels, labels).value == 1.0
    assert gwet_ac1_pair(labels, labels).value == pytest.approx(1.0)
    assert cohen_kappa(labels, labels).value == pytest.approx(1.0)
    matrix = [[v, v, v] for v in labels]
    assert gwet_ac1(matrix).value == pytest.approx(1.0)
    assert krippendorff_alpha(matrix).value == pytest.approx(1.0)
    assert fleiss_kappa(matrix).value == pytest.approx(1.0)


@settings(max_examples=80, deadline=None)
@given(paired_labels())
def test_two_rater_coefficients_are_bounded_symmetric_and_consistent(
    pair: tuple[list[str], list[str]],
) -> None:
    a, b = pair
    for fn in (cohen_kappa, gwet_ac1_pair):
        forward, backward = fn(a, b), fn(b, a)
        if forward.value is None:
            assert forward.reason and backward.value is None
            continue
        assert -1 - 1e-9 <= forward.value <= 1 + 1e-9
        assert forward.value == pytest.approx(backward.value)
    po = percent_agreement(a, b).value
    assert po is not None and 0 <= po <= 1
    # With no missing rating, multi-rater AC1 over the n x 2 matrix is the two-rater AC1.
    assert gwet_ac1(list(zip(a, b, strict=True))).value == pytest.approx(gwet_ac1_pair(a, b).value)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.integers(0, 15),
        st.dictionaries(
            st.sampled_from(["ann", "bob", "cy"]), st.one_of(st.none(), st.integers(0, 1)), max_size=3
        ),
        max_size=15,
    )
)
def test_summarise_never_fails_and_explains_every_missing_value(
    labels: dict[int, dict[str, int | None]],
) -> None:
    summary = summarise(labels)
    coefficients = [summary.fleiss_kappa, summary.krippendorff_alpha, summary.gwet_ac1]
    for pair in summary.pairs:
        coefficients += [pair.percent, pair.cohen_kappa, pair.gwet_ac1]
    for c in coefficients:
        assert (c.value is None) == bool(c.reason)
        assert c.value is None or math.isfinite(c.value)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.integers(0, 9), st.frozensets(st.integers(0, 5)), max_size=10),
    st.dictionaries(st.integers(0, 9), st.frozensets(st.integers(0, 5)), max_size=10),
)
def test_set_agreement_bounds(a: dict[int, frozenset[int]], b: dict[int, frozenset[int]]) -> None:
    result = set_agreement(a, b)
    assert set_agreement(a, a).mean_jaccard in (None, 1.0)
    if result.n_units:
        assert result.mean_jaccard is not None and result.mean_f1 is not None
        # Jaccard = F1 / (2 - F1) <= F1 unit by unit, so also on average.
        assert 0 <= result.mean_jaccard <= result.mean_f1 + 1e-12 <= 1 + 1e-12
