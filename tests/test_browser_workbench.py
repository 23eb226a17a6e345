"""In Debian's Chromium, an annotator works through three demo queries with mouse and keyboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Judgment, QueryVerdict, Submission
from db.session import Database
from models.embedder import DEMO_CHECKPOINT
from services import ranking
from services.assignment import assign
from services.datasets import update_settings
from services.demo import generate_demo
from services.importer import import_bundle
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
    update_settings(sqlite_db, "demo", dict(ranking.DEMO_SETTINGS))
    ranking.embed_dataset(sqlite_db, "demo")
    ranking.rank_dataset(sqlite_db, "demo", k=40)
    people = make_users(sqlite_db)
    assign(sqlite_db, "demo", overlap=1, annotators=["ann1"])
    with app_server(sqlite_db.url, data_dir) as base:
        yield base, people


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
            relevant = page.get_by_role("button", name="Yes", exact=True)
            for i in range(relevant.count()):
                relevant.nth(i).click()
                page.wait_for_timeout(300)
            page.get_by_role("checkbox", name="Relevant").first.click()
            page.wait_for_timeout(800)
            if n == 1:  # the second query is rejected instead
                page.get_by_text("Reject", exact=True).click()
                page.wait_for_timeout(500)
            if n == 0:
                page.screenshot(path=str(tmp_path / "workbench.png"), full_page=True)
            # Keyboard: Ctrl+Enter submits and moves on.
            page.keyboard.press("Control+Enter")
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
