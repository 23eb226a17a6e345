"""A system-preference study's significance tests: exact binomial for two systems, chi-square
against equal preference and Holm-corrected pairwise binomial tests for more, with Wilson
intervals; in the results, the CLI report, tests.csv; and a study's sample defaulting to every
eligible trial."""

from __future__ import annotations

import csv
from itertools import product
from pathlib import Path

import pytest
from scipy.stats import multinomial
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app as cli_app
from db.models import Item
from db.session import Database
from services.core.auth import SYSTEM
from services.study.admin import close_study
from services.study.create import create_preference_study, create_quality_study
from services.study.eligible import count_eligible
from services.study.rating import Answer
from services.study.results import preference_results
from services.study.stats import chi_square_test, preference_tests, wilson
from tests.test_study import SOURCES, answer_all, paired, ranked  # noqa: F401 - fixtures
from ui.exports.study import write_results
from ui.reports.study import create_lines, report_lines, significance_table


def test_two_systems_get_an_exact_binomial_test() -> None:
    credits = [{"a"}] * 7 + [{"b"}] + [{"a", "b"}] * 2  # two ties left out
    overall, (pair,) = preference_tests(credits, ["a", "b"])
    assert overall.name == "binomial test" and overall.n == 8
    assert overall.p_value == pytest.approx(2 * (1 + 8) / 2**8)  # P(X >= 7) + P(X <= 1), n = 8
    assert (pair.first_wins, pair.second_wins, pair.p_holm) == (7, 1, overall.p_value)
    assert (pair.share.low, pair.share.high) == pytest.approx(wilson(7, 8))


def test_several_systems_get_chi_square_and_holm_corrected_pairs() -> None:
    credits = [{"a"}] * 10 + [{"b"}] * 10 + [{"c"}] + [{"a", "b"}] * 2
    overall, pairs = preference_tests(credits, ["a", "b", "c"])
    # 21 answers credited to one system, 7 expected each: chi² = (9 + 9 + 36) / 7, df 2: p = e^(-chi²/2).
    assert overall.name == "chi-square goodness of fit (equal preference)" and overall.n == 21
    assert overall.statistic == pytest.approx(54 / 7)
    assert overall.p_value == pytest.approx(2.718281828 ** (-27 / 7), rel=1e-6)
    by_pair = {(p.first, p.second): p for p in pairs}
    assert (by_pair["a", "b"].first_wins, by_pair["a", "b"].second_wins) == (10, 10)
    assert (by_pair["a", "c"].first_wins, by_pair["a", "c"].second_wins) == (12, 1)  # shared picks count here
    one_sided = 2 * (1 + 13) / 2**13  # 12 of 13
    assert by_pair["a", "c"].test.p_value == pytest.approx(one_sided)
    # Holm over three p-values (p, p, 1): 3p, max(3p, 2p) = 3p, and 1.
    assert by_pair["a", "c"].p_holm == pytest.approx(3 * one_sided)
    assert by_pair["b", "c"].p_holm == pytest.approx(3 * one_sided)
    assert by_pair["a", "b"].p_holm == pytest.approx(1.0)


@pytest.mark.parametrize("counts", [[0, 4, 8], [1, 2, 6], [2, 3, 4]])
def test_small_counts_get_a_monte_carlo_p_close_to_the_exact_one(counts: list[int]) -> None:
    n, expected = sum(counts), sum(counts) / 3
    observed = sum((c - expected) ** 2 / expected for c in counts)
    exact = sum(
        multinomial.pmf([a, b, n - a - b], n, [1 / 3] * 3)
        for a, b in product(range(n + 1), repeat=2)
        if a + b <= n and sum((c - expected) ** 2 / expected for c in (a, b, n - a - b)) >= observed - 1e-9
    )
    test = chi_square_test(counts, seed=1)
    assert test.name.endswith("Monte Carlo p") and test.p_value == pytest.approx(exact, abs=0.01)
    assert chi_square_test(counts, seed=1) == test  # seeded: the same study gives the same report


def test_preference_results_report_and_csv_carry_the_tests(db: Database, ranked, tmp_path: Path) -> None:  # noqa: F811
    create_preference_study(
        db,
        SYSTEM,
        dataset="shop",
        name="pick-1",
        systems=["clip_image", "bm25", "hybrid"],
        raters=["ann1", "ann2"],
        raters_per_trial=2,
        seed=3,
    )
    with db.read() as s:
        ext = dict(s.execute(select(Item.id, Item.ext_id)).all())
    # ann1 always picks it1 (clip_image's and hybrid's top 1), ann2 always it4 (bm25's).
    answer_all(
        db,
        ranked,
        "pick-1",
        lambda pos, rater, m: Answer(
            preference=next(
                label for label, o in m.items() if ext[o["item_id"]] == ("it1" if rater == "ann1" else "it4")
            )
        ),
    )
    close_study(db, SYSTEM, "pick-1")
    r = preference_results(db, SYSTEM, "pick-1", n_resamples=2000)
    # Only bm25's 3 picks are credited to one system alone: [0, 3, 0], p = P(all in one) = 3 / 27.
    assert r.overall_test.n == 3 and r.overall_test.p_value == pytest.approx(1 / 9, abs=0.02)
    pairs = {(p.first, p.second): p for p in r.pairwise}
    assert (pairs["clip_image", "bm25"].first_wins, pairs["clip_image", "bm25"].second_wins) == (3, 3)
    assert (
        pairs["clip_image", "hybrid"].test.reason == "no decisive answer"
    )  # they are always credited together
    lines = "\n".join(report_lines(r))
    assert "Against equal preference: chi-square goodness of fit (equal preference), Monte Carlo p" in lines
    assert "clip_image vs bm25: 3 – 3 (clip_image 50 % [" in lines and "Holm p = 1" in lines

    table = significance_table(r)
    assert list(table["compared"]) == [
        "clip_image / bm25 / hybrid: equal preference",
        "clip_image vs bm25",
        "clip_image vs hybrid",
        "bm25 vs hybrid",
    ]
    write_results(db, SYSTEM, "pick-1", tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "tests.csv").open(encoding="utf-8")))
    assert [row["test"] for row in rows] == [
        "chi-square goodness of fit (equal preference), Monte Carlo p"
    ] + ["binomial test"] * 3
    assert rows[1]["wins"] == "3 – 3" and float(rows[1]["p"]) == pytest.approx(1.0)


def test_the_sample_defaults_to_every_eligible_trial(db: Database, paired, tmp_path: Path) -> None:  # noqa: F811
    eligible = count_eligible(db, SYSTEM, dataset="pairs", kind="query_quality", sources=SOURCES)
    assert (eligible.n_eligible, eligible.unit) == (8, "groups")
    report = create_quality_study(
        db, SYSTEM, dataset="pairs", name="all", sources=SOURCES, raters_per_trial=2
    )
    assert report.study.n_trials == 8 and report.sample is None
    assert create_lines(report)[1] == "  sampled every one of the 8 eligible targets (the default)"
    if db.is_sqlite:  # the CLI reads QRELS_DB_URL once; SQLite is enough
        out = CliRunner().invoke(
            cli_app,
            ["study", "create", "--dataset", "pairs", "--name", "cli-all", "--raters-per-trial", "2"],
        )
        assert out.exit_code == 0, out.output
        assert "sampled every one of the 8 eligible targets (the default)" in out.output
