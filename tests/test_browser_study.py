"""In Debian's Chromium: a rater answers blind (neither the page nor any message the browser receives
names a source or a query), and the admin sees counts until closing, then the results and charts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from db.session import Database
from db.studies import StudyResponse
from services.core.auth import SYSTEM
from services.ingest.importer import import_bundle
from services.study.admin import study_info
from services.study.create import create_quality_study
from services.study.rating import my_queue, next_assignment
from tests.browser import ROOT, app_server, chromium_page, log_in, require_chromium
from tests.conftest import PASSWORD, make_users
from tests.test_study import SOURCES, answer_all, by_source, make_pair_bundle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        "pages/rate.py" not in (ROOT / "app.py").read_text(encoding="utf-8"),
        reason="the study pages are not in app.py's navigation yet",
    ),
]

LEAKS = re.compile(rb"generated|human|QID-|grp\d|query_id", re.IGNORECASE)


@pytest.fixture
def server(sqlite_db: Database, data_dir: Path, tmp_path: Path):
    require_chromium()
    import_bundle(sqlite_db, make_pair_bundle(tmp_path / "pairs"), "pairs")
    people = make_users(sqlite_db)
    create_quality_study(
        sqlite_db,
        SYSTEM,
        dataset="pairs",
        name="pilot",
        sources=SOURCES,
        raters=["ann1", "ann2", "reviewer"],
        raters_per_trial=2,
        seed=3,
    )
    with app_server(sqlite_db.url, data_dir) as base:
        yield base, people


def test_blind_rating_then_sealed_results_in_chromium(server, sqlite_db: Database, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base, people = server
    ann1 = people["ann1"]
    total = len(my_queue(sqlite_db, ann1, "pilot"))
    aid = next_assignment(sqlite_db, ann1, "pilot")
    received: list[bytes] = []
    with chromium_page() as page:
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda data: received.append(data if isinstance(data, bytes) else data.encode()),
            ),
        )
        log_in(page, base, "ann1", PASSWORD, path="rate")
        expect(page.get_by_role("heading", name="Query A")).to_be_visible()
        expect(page.get_by_role("heading", name="Query B")).to_be_visible()
        expect(page.get_by_role("link", name="Studies")).to_have_count(0)  # the admin page is not offered
        page.screenshot(path=str(tmp_path / "rate.png"), full_page=True)
        page.wait_for_selector(f".sheet[data-trial='{aid}']")
        for key in ("4", "2", "a", "Enter"):  # the keyboard alone: A scores 4, B scores 2, A is better
            page.keyboard.press(key)
        expect(page.get_by_text(f"1 / {total} answered")).to_be_visible(timeout=20_000)
        html = page.content().encode()
    assert sum(map(len, received)) > 1000, "no websocket message was recorded"
    assert any(b"Query A" in frame for frame in received)  # what was checked is what was shown
    for where, data in [("page", html)] + [("message", frame) for frame in received]:
        assert not LEAKS.search(data), (where, LEAKS.search(data))
    with sqlite_db.read() as s:
        stored = s.scalars(select(StudyResponse).where(StudyResponse.assignment_id == aid)).one()
    assert (stored.scores, stored.preference) == ({"overall": {"A": 4, "B": 2}}, "A")

    # The other answers, then the admin: counts only while open; closing unseals the results.
    answer_all(
        sqlite_db,
        people,
        "pilot",
        lambda pos, rater, m: by_source(m, {SOURCES[0]: 4, SOURCES[1]: 3 + pos % 3}, SOURCES[pos % 2]),
    )
    with chromium_page() as page:
        log_in(page, base, "admin", PASSWORD, path="study_admin")
        expect(page.get_by_role("heading", name="Studies")).to_be_visible()
        expect(page.get_by_text("16 / 16 answers")).to_be_visible()
        expect(page.get_by_text("Scores stay sealed while the study is open")).to_be_visible()
        expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(0)
        assert "vs human" not in page.content()
        page.get_by_text("Close for good").click()
        page.get_by_role("button", name="Close study").click()
        expect(
            page.get_by_text(re.compile(r"generated \d\.\d\d vs human \d\.\d\d; preference"))
        ).to_be_visible(timeout=20_000)
        charts = page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg.marks"
        )
        expect(charts).to_have_count(2, timeout=30_000)
        expect(page.get_by_role("button", name="Download every response (CSV, unblinded)")).to_be_visible()
        # The results text block wraps: nothing is cut off on the right.
        block = page.locator("[data-testid='stCode'] pre").first
        expect(block).to_contain_text("binomial test")
        assert block.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the results text is clipped"
        page.screenshot(path=str(tmp_path / "results.png"), full_page=True)
    assert study_info(sqlite_db, SYSTEM, "pilot").status == "closed"
