"""In Debian's Chromium: a card says how many copies it has in the pool, and once it is judged,
``c`` gives them the same label; the submit stores one ``duplicate`` judgment per copy."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import Assignment, Item, Judgment, Qrel
from models.embedder import DEMO_CHECKPOINT
from services.datasets.assignment import assign
from services.duplicates.copies import dataset_groups
from services.duplicates.groups import find_duplicates
from tests.browser import app_server, chromium_page, log_in, ranked_demo, require_chromium
from tests.conftest import PASSWORD, make_users

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not DEMO_CHECKPOINT.is_file(), reason="the demo CLIP checkpoint is not built"),
]
WAIT = 60_000


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory):
    """A small ranked demo with its duplicate groups: 150 items, 8 queries."""
    require_chromium()
    root = tmp_path_factory.mktemp("wb-dups")
    with ranked_demo(root, items=150, queries=8, seed=7, k=20) as (db, data_dir):
        assert find_duplicates(db, "demo").groups
        make_users(db)
        assign(db, "demo", overlap=1, annotators=["ann1"])
        yield db, data_dir


def test_c_gives_a_judged_cards_copies_its_label(demo_db) -> None:
    db, data_dir = demo_db
    with app_server(db.url, data_dir) as base, chromium_page() as page:
        log_in(page, base, "ann1", PASSWORD, path="workbench")
        page.wait_for_selector(".wb[data-shown]", timeout=WAIT)
        shown = page.locator(".wb").get_attribute("data-query-id")  # the assignment on screen
        with db.read() as s:
            query_id = s.scalar(select(Assignment.query_id).where(Assignment.id == int(shown)))
            positives = set(s.scalars(select(Qrel.item_id).where(Qrel.query_id == query_id)))
            groups = dataset_groups(s, s.scalar(select(Item.dataset_id).limit(1)))
            members = next(m for m in groups.values() if not positives & set(m))
            title = s.scalar(select(Item.title).where(Item.id == members[0]))
        source, copies = members[0], members[1:]

        page.keyboard.press("/")
        page.keyboard.type(title)
        page.keyboard.press("Enter")
        card = page.locator(f".grid.res .card[data-item='{source}']")
        card.wait_for(timeout=WAIT)
        button = card.locator(".copies")
        noun = "copy" if len(copies) == 1 else "copies"
        assert button.inner_text().startswith(f"{len(copies)} {noun} in the pool")
        assert button.is_disabled()  # nothing to give before the card is judged
        card.locator(".mark").click()
        assert not button.is_disabled() and "same label?" in button.inner_text()
        page.keyboard.press("c")
        assert button.get_attribute("aria-pressed") == "true"
        for copy in copies:  # copies on screen say whose label they take
            twin = page.locator(f".grid.res .card[data-item='{copy}']")
            if twin.count():
                assert "copied" in twin.first.get_attribute("class")
        page.screenshot(path=str(data_dir / "copies.png"))
        page.keyboard.press("a")
        page.keyboard.press("Enter")
        page.wait_for_selector(f".wb[data-shown]:not([data-query-id='{shown}'])", timeout=WAIT)

    with db.read() as s:
        stored = s.execute(
            select(Judgment.item_id, Judgment.label, Judgment.provenance_detail).where(
                Judgment.provenance == "duplicate"
            )
        ).all()
        added = s.scalar(select(Judgment.provenance).where(Judgment.item_id == source))
    assert sorted(i for i, _, _ in stored) == sorted(copies)
    assert {(label, detail["of"]) for _, label, detail in stored} == {("relevant", source)}
    assert added == "search"
