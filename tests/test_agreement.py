"""Agreement of a dataset from the database, on two annotators who disagree in known ways
(the fixture of tests/test_review.py), checked against hand counts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from db.session import Database
from services.agreement import report as agreement
from services.core.errors import PermissionDenied
from tests.test_review import disputed  # noqa: F401 - the fixture
from ui.reports.agreement import report_lines


def test_item_verdict_and_set_agreement_match_hand_counts(db: Database, disputed) -> None:  # noqa: F811
    report = agreement.agreement_report(db, disputed["admin"], "shop")
    # Item units (q2: 2, q3: 3, q4: 3, q5: 2; q1 and q6 were rejected by someone): 7 of 10 agree.
    assert report.items.n_units == 10
    (pair,) = report.items.pairs
    assert pair.percent.value == pytest.approx(0.7)
    # Verdicts: only q1 differs (accept vs reject) among 6 queries.
    (vpair,) = report.verdicts.pairs
    assert vpair.percent.value == pytest.approx(5 / 6)
    # Final positive sets per query: J = (0, 1/2, 2/3, 1, 1/2, 1), F1 = (0, 2/3, 4/5, 1, 2/3, 1).
    (row,) = report.sets
    assert row.n_queries == 6
    assert row.mean_jaccard == pytest.approx((0 + 1 / 2 + 2 / 3 + 1 + 1 / 2 + 1) / 6)
    assert row.mean_f1 == pytest.approx((0 + 2 / 3 + 4 / 5 + 1 + 2 / 3 + 1) / 6)
    # Added positives: it9 on q3 (ann1 only), it8 on q4 (both, so each is confirmed).
    assert (report.added, report.added_confirmed) == (3, 2)
    lines = "\n".join(report_lines(report))
    assert "Cohen's kappa" in lines and "Gwet's AC1" in lines and "Krippendorff's alpha" in lines


def test_agreement_over_time_has_todays_figures(db: Database, disputed) -> None:  # noqa: F811
    rows = agreement.agreement_over_time(db, disputed["admin"], "shop")
    by_stat = {r["statistic"]: r["value"] for r in rows}
    assert by_stat["percent agreement"] == pytest.approx(0.7)
    assert {"Gwet's AC1", "Krippendorff's alpha"} <= set(by_stat)


def test_agreement_is_for_admins(db: Database, disputed) -> None:  # noqa: F811
    with pytest.raises(PermissionDenied):
        agreement.agreement_report(db, disputed["ann1"], "shop")


def test_cli_prints_the_same_report(db: Database, disputed) -> None:  # noqa: F811
    from cli.main import app

    result = CliRunner().invoke(app, ["agreement", "--dataset", "shop"])
    assert result.exit_code == 0, result.output
    assert "agreement 0.700" in result.output
    assert "Added positives also found by another annotator: 2 / 3" in result.output
