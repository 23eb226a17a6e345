"""In Debian's Chromium, an annotator works through three demo queries with mouse and keyboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Judgment, QueryVerdict, Submission
from db.session import Database
from demo.writer import generate_demo
from models.embedder import DEMO_CHECKPOINT
from services.datasets.assignment import assign
from services.datasets.settings import update_settings
from services.ingest.importer import import_bundle
from services.ranking.embed import embed_dataset
from services.ranking.models import DEMO_SETTINGS
from services.ranking.rank import rank_dataset
from tests.browser import app_server, chromium_page, log_in, require_chromium
from tests.conftest import PASSWORD, make_users

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not DEMO_CHECKPOINT.is_file(), reason="the demo CLIP checkpoint is not built"),
]


@pytest.fixture
def server(sqlite_db: Database, data_dir: Path, tmp_path: Path):
    require_chromium()
    generate_demo(tmp_path / "demo", n_items=200, n_queries=12, seed=5)
    import_bundle(sqlite_db, tmp_path / "demo", "demo", is_demo=True)
    update_settings(sqlite_db, "demo", dict(DEMO_SETTINGS))
    embed_dataset(sqlite_db, "demo")
    rank_dataset(sqlite_db, "demo", k=40)
    people = make_users(sqlite_db)
    assign(sqlite_db, "demo", overlap=1, annotators=["ann1"])
    with app_server(sqlite_db.url, data_dir) as base:
        yield base, people


def idle(page) -> None:
    """Wait until no rerun is running (a key pressed mid-rerun may land on an old button)."""
    from playwright.sync_api import expect

    page.wait_for_timeout(300)
    expect(page.locator("[data-testid='stStatusWidget']")).to_have_count(0, timeout=30_000)


def test_annotate_three_demo_queries(server, sqlite_db: Database, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base, people = server
    with chromium_page() as page:
        log_in(page, base, "ann1", PASSWORD)
        page.get_by_role("link", name="Workbench").click()
        expect(page.get_by_role("heading", name="Workbench")).to_be_visible()
        for n in range(3):
            expect(page.get_by_text(f"{n} / 12 done")).to_be_visible()
            # Mouse: every labelled positive is relevant, one candidate is added.
            groups = page.get_by_role("radiogroup", name="Relevant?")
            relevant = groups.get_by_role("radio", name="Yes", exact=True)
            chosen = groups.locator("[aria-checked=true]")
            expect(relevant.first).to_be_visible()
            for i in range(relevant.count()):
                relevant.nth(i).click()
                expect(chosen).to_have_count(i + 1)  # the rerun took the click
            box = page.get_by_role("checkbox", name="Relevant").first
            box.locator("xpath=ancestor::label").click()
            expect(box).to_be_checked()
            if n == 1:  # the second query is rejected instead
                page.get_by_text("Reject", exact=True).click()
                expect(page.get_by_text("Reason", exact=True)).to_be_visible()
            idle(page)
            if n == 0:
                page.screenshot(path=str(tmp_path / "workbench.png"), full_page=True)
            # Ctrl+S (keyboard) or the button (mouse) submits and moves on.
            if n == 1:
                page.get_by_role("button", name="Submit and next").click()  # mouse
            else:
                page.keyboard.press("Control+s")  # keyboard, also after the page moved on
            expect(page.get_by_text(f"{n + 1} / 12 done")).to_be_visible(timeout=20_000)

    me = people["ann1"]
    with sqlite_db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.user_id == me.id)) == 3
        verdicts = sorted(s.scalars(select(QueryVerdict.verdict).where(QueryVerdict.user_id == me.id)))
        added = s.scalar(
            select(func.count())
            .select_from(Judgment)
            .where(Judgment.user_id == me.id, Judgment.provenance == "candidate")
        )
    assert verdicts == ["accept", "accept", "reject"]
    assert added == 3
