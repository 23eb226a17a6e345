"""The dashboard in AppTest (every chart built from data) and in Chromium (every chart drawn)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db.session import Database
from services.core.auth import Actor
from tests.browser import app_server, chromium_page, log_in, require_chromium
from tests.conftest import PASSWORD
from tests.test_review import disputed  # noqa: F401 - the fixture
from ui.state import KEY_USER

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
    frame = at.dataframe[0].value
    assert set(frame["on"]) == {"item labels", "query verdicts"}


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
