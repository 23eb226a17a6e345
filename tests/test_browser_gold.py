"""In Chromium: a gold query looks like any other — in the page, the component and every websocket
frame — until training mode shows its answer after the submit."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Assignment, Item, Query
from db.session import Database
from services.datasets.assignment import assign
from services.datasets.settings import update_settings
from services.gold.answers import set_gold
from services.ingest.importer import import_bundle
from tests.browser import app_server, chromium_page, log_in, require_chromium
from tests.bundles import add_pooled_candidates, make_bundle
from tests.conftest import PASSWORD, make_users
from tests.test_browser_blinding import shadow_html

pytestmark = pytest.mark.browser
NOTE = "practice-note-3e9a"


@pytest.fixture
def server(sqlite_db: Database, data_dir: Path, tmp_path: Path):
    require_chromium()
    import_bundle(sqlite_db, make_bundle(tmp_path / "b", n_items=8, n_queries=6), "shop")
    add_pooled_candidates(sqlite_db, "shop")
    make_users(sqlite_db)
    with sqlite_db.read() as s:
        query = s.scalar(select(Query.id).where(Query.ext_id == "q1"))
        item = s.scalar(select(Item.id).where(Item.ext_id == "it2"))
    set_gold(sqlite_db, query, verdict="accept", labels={item: "not_relevant"}, note=NOTE)
    update_settings(sqlite_db, "shop", {"gold_rate": 2})  # one in two: the gold query comes early
    assign(sqlite_db, "shop", overlap=1, annotators=["ann1"])
    with sqlite_db.read() as s:
        gold_aid = s.scalar(select(Assignment.id).where(Assignment.query_id == query))
    with app_server(sqlite_db.url, data_dir) as base:
        yield base, sqlite_db, gold_aid


def test_a_gold_query_is_indistinguishable_until_training_mode_answers_it(server) -> None:
    base, db, gold_aid = server
    frames: list[bytes] = []
    seen: list[str] = []
    with chromium_page() as page:
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived", lambda f: frames.append(f if isinstance(f, bytes) else f.encode())
            ),
        )
        log_in(page, base, "ann1", PASSWORD, path="workbench")
        for _ in range(3):
            page.wait_for_selector(".wb[data-shown]", timeout=60_000)
            query = page.locator(".wb").get_attribute("data-query-id")
            seen.append(query)
            html = shadow_html(page).lower()
            assert "gold" not in html and NOTE not in html and "practice" not in html
            page.keyboard.press("a")
            page.keyboard.press("Enter")
            page.wait_for_selector(f".wb[data-shown]:not([data-query-id='{query}'])", timeout=60_000)
        received = b"".join(frames).lower()
        assert b"gold" not in received and NOTE.encode() not in received
        assert str(gold_aid) in seen  # the gold query was among them, and looked like the others

        update_settings(db, "shop", {"gold_training": True})
        page.keyboard.press("o")
        page.wait_for_selector(f".history li[data-aid='{gold_aid}']", timeout=60_000)
        page.locator(f".history li[data-aid='{gold_aid}']").click()
        page.wait_for_selector(f".wb[data-shown][data-query-id='{gold_aid}']", timeout=60_000)
        page.keyboard.press("Enter")  # submitted again, now in training mode
        page.wait_for_selector(f".wb[data-shown]:not([data-query-id='{gold_aid}'])", timeout=60_000)
        message = page.locator(".msg").inner_text()
        assert message.startswith("Training") and "is not relevant" in message and NOTE in message
