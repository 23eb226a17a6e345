"""The dashboard in AppTest (every chart built from data) and in Chromium (every chart drawn)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db.session import Database
from services.agreement import stats
from services.agreement.report import ITEM_SCALE, AgreementReport
from services.core.auth import Actor
from tests.browser import app_server, chromium_page, log_in, require_chromium
from tests.conftest import PASSWORD
from tests.test_review import disputed  # noqa: F401 - the fixture
from ui.charts.dashboard import STATUS_COLOURS
from ui.reports.agreement import NEEDS_TWO, agreement_table, paradox_line
from ui.session import KEY_USER

CHARTS = 8  # datasets, annotators, throughput, time per query, verdicts, positives, agreement over time, gold vs competence


def open_page(user: Actor) -> AppTest:
    at = AppTest.from_file("../pages/dashboard.py", default_timeout=60)
    at.session_state[KEY_USER] = user
    at.session_state["qs_last_seen"] = time.time()
    return at.run()


def test_dashboard_builds_every_chart(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["admin"])
    assert not at.exception
    charts = at.get("vega_lite_chart")
    assert len(charts) == CHARTS
    # One colour per status across every chart, and legends that cut no label.
    seen: dict[str, str] = {}
    named_axes = 0
    for element in charts:
        spec = json.loads(element.proto.spec)
        colour = spec.get("encoding", {}).get("color", {})
        scale = colour.get("scale", {})
        for label, rgb in zip(scale.get("domain", []), scale.get("range", []), strict=True):
            assert seen.setdefault(label, rgb) == rgb == STATUS_COLOURS[label], label
        if colour:
            assert colour["legend"]["labelLimit"] == 0
        y = spec.get("encoding", {}).get("y", {})
        if y.get("type") == "nominal":  # names on the axis (provenance, annotator, dataset) are never cut
            assert y["axis"]["labelLimit"] == 0, y
            named_axes += 1
    assert named_axes == 5  # datasets, annotators twice, verdicts, provenance
    assert {"done", "pending", "skipped", "Accepted", "Rejected: wrong", "said relevant"} <= set(seen)


def row(frame, on: str, who: str, statistic: str) -> tuple[str, str]:
    (found,) = frame[
        (frame["on"] == on) & (frame["annotators"] == who) & (frame["statistic"] == statistic)
    ].to_dict("records")
    return found["value"], found["units"]


def test_dashboard_agreement_table_has_one_labelled_column_each(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["admin"])
    frame = next(
        t.value for t in at.dataframe if "statistic" in t.value.columns
    )  # (the gold section has its own)
    assert list(frame.columns) == ["on", "annotators", "statistic", "value", "units", "what it means"]
    assert not frame.isna().any().any() and "None" not in frame.to_string()
    pair, everyone = "ann1 / ann2", "all annotators"
    # Verdicts (q1: accept/reject, q6: reject/reject, the rest accept/accept): 5 of 6 agree;
    # Cohen's kappa = (5/6 - (5/6*4/6 + 1/6*2/6)) / (1 - 22/36) = 0.571.
    assert row(frame, "query verdicts", pair, "percent agreement") == ("83.3 %", "6 queries")
    assert row(frame, "query verdicts", pair, "Cohen's kappa") == ("0.571", "6 queries")
    # Item labels: 10 items two annotators voted on (q2: 2, q3: 3, q4: 3, q5: 2), 7 alike.
    assert row(frame, "item labels", pair, "percent agreement") == ("70.0 %", "10 items")
    statistics = set(frame[frame["annotators"] == everyone]["statistic"])
    assert statistics == {"Fleiss' kappa", "Krippendorff's alpha", "Gwet's AC1"}
    assert all(frame["what it means"].str.len() > 20)


def test_the_prevalence_paradox_is_explained_and_missing_values_say_why() -> None:
    # 20 items: both annotators say "not relevant" to 19, and differ on one.
    units = {n: {"ann1": "not_relevant", "ann2": "not_relevant"} for n in range(19)}
    units[19] = {"ann1": "relevant", "ann2": "not_relevant"}
    items = stats.summarise(units, categories=ITEM_SCALE)
    lonely = stats.summarise({1: {"ann1": "accept"}}, categories=("accept", "reject", "rewrite"))
    report = AgreementReport("shop", items, lonely, [], 0, 0)
    line = paradox_line(report)
    assert line is not None and line.startswith(
        "ann1 / ann2 agree on 95 % of item labels but Cohen's kappa is 0.00"
    )
    # Kappa: chance agreement 0.95 * 1 = 0.95, so (0.95 - 0.95) / 0.05 = 0. AC1 over the 3-label scale:
    # chance (0.025 * 0.975 * 2) / 2 = 0.024375, so (0.95 - 0.024375) / 0.975625 = 0.949.
    assert "prevalence paradox" in line and "Gwet's AC1 (0.949)" in line
    table = agreement_table(report)
    assert {"on": "query verdicts", "value": NEEDS_TWO}.items() <= table[-1].items()
    assert paradox_line(AgreementReport("shop", lonely, lonely, [], 0, 0)) is None


def test_dashboard_is_for_admins(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["reviewer"])
    assert "You do not have access to this page." in " ".join(e.value for e in at.error)
    assert not at.get("vega_lite_chart")


@pytest.mark.browser
def test_dashboard_renders_in_chromium(db: Database, disputed, data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    if not db.is_sqlite:
        pytest.skip("one browser run is enough (SQLite)")
    require_chromium()
    from playwright.sync_api import expect

    with app_server(db.url, data_dir) as base, chromium_page() as page:
        log_in(page, base, "admin", PASSWORD, path="dashboard")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        page.wait_for_timeout(5000)
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        charts = page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg.marks"
        )
        expect(charts).to_have_count(CHARTS, timeout=30_000)
        for n in range(CHARTS):
            box = charts.nth(n).bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
