"""In Chromium: a reviewer settles issue 13's cases from the keyboard alone, the page (HTML, shadow
DOM and every websocket frame) never carries an annotator's name, and an admin can reveal the
names, which is logged."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from db.audit import NameReveal
from db.models import Query
from db.session import Database
from services.datasets.assignment import assign
from services.ingest.importer import import_bundle
from services.review import disputes as review
from tests.browser import app_server, chromium_page, log_in, require_chromium
from tests.bundles import add_pooled_candidates, make_bundle
from tests.conftest import PASSWORD, make_users
from tests.test_review_scenario import NOT, REL, work

pytestmark = pytest.mark.browser
NAMES = ("ann1", "ann2")
SURFACE = ".rv[data-case-id]"
# Every shadow root's markup (page.content() leaves shadow DOM out).
SHADOW_HTML = """() => {
  const out = [];
  const walk = (node) => {
    for (const el of node.querySelectorAll('*')) {
      if (el.shadowRoot) { out.push(el.shadowRoot.innerHTML); walk(el.shadowRoot); }
    }
  };
  walk(document);
  return out.join('\\n');
}"""


@pytest.fixture
def server(sqlite_db: Database, data_dir: Path, tmp_path: Path):
    require_chromium()
    import_bundle(sqlite_db, make_bundle(tmp_path / "b", n_items=10, n_queries=3), "shop")
    add_pooled_candidates(sqlite_db, "shop")
    people = make_users(sqlite_db)
    assign(sqlite_db, "shop", overlap=2)
    a, b = people["ann1"], people["ann2"]
    work(
        sqlite_db,
        a,
        "q1",
        {"it2": REL, "it3": REL, "it9": REL, "it8": NOT},
        "accept",
        note="looks fine to me",
    )
    work(sqlite_db, b, "q1", {"it2": NOT, "it3": REL, "it9": NOT, "it7": REL}, "reject", reason="wrong")
    work(sqlite_db, a, "q2", {"it3": REL, "it4": REL}, "rewrite", rewrite="Find item two, in blue")
    work(sqlite_db, b, "q2", {"it3": NOT, "it4": NOT}, "reject", reason="wrong")
    with app_server(sqlite_db.url, data_dir) as base:
        yield base, people


def query_id(db: Database, ext: str) -> int:
    with db.read() as s:
        return s.scalar(select(Query.id).where(Query.ext_id == ext))


def test_a_reviewer_settles_cases_from_the_keyboard_and_never_receives_a_name(
    server, sqlite_db: Database, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base, people = server
    q1, q2 = query_id(sqlite_db, "q1"), query_id(sqlite_db, "q2")
    frames: list[bytes] = []
    with chromium_page() as page:
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda payload: frames.append(payload if isinstance(payload, bytes) else payload.encode()),
            ),
        )
        page.set_viewport_size({"width": 1440, "height": 900})
        log_in(page, base, "reviewer", PASSWORD, path="review")
        surface = page.locator(SURFACE)
        expect(surface).to_have_attribute("data-case-id", str(q1))
        # The case table fits at 1440 px: no column cut off, no sideways scrolling.
        page.get_by_text("All 2 cases").click()
        grid = page.locator("[data-testid='stDataFrame'] .dvn-scroller").first
        expect(grid).to_be_visible()
        assert grid.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the case table is cut off"
        page.get_by_text("All 2 cases").click()
        page.locator("body").press("Escape")  # the mouse was only for the check above
        cards = surface.locator(".rv-card")
        expect(cards).to_have_count(3)  # it2, it7, it9: every item whose labels differ
        assert [cards.nth(n).get_attribute("data-ext-id") for n in range(3)] == ["it2", "it7", "it9"]
        expect(surface.locator("[data-role=count]")).to_have_text(
            "5 judged items: 3 in dispute, 1 labelled alike by everyone who labelled it, "
            "1 labelled by one annotator only."
        )
        expect(cards.nth(0)).to_have_attribute("aria-current", "true")
        expect(cards.nth(0).locator(".rv-votes")).to_contain_text("B: Not relevant (rejected the query)")

        page.keyboard.press("?")
        expect(surface.locator("[data-overlay=keys]")).to_be_visible()
        page.keyboard.press("Escape")
        expect(surface.locator("[data-overlay=keys]")).to_be_hidden()

        # Enter before deciding is refused in the page, and says why.
        page.keyboard.press("o")
        page.keyboard.press("Enter")
        expect(surface.locator(".rv-msg")).to_contain_text("Decide every item in dispute (3 left)")
        for k in ("y", "y", "n"):  # it2 yes, it7 yes, it9 no: focus moves on after each
            page.keyboard.press(k)
        expect(cards.nth(0).locator("[data-label=relevant]")).to_have_attribute("aria-pressed", "true")
        expect(cards.nth(2).locator("[data-label=not_relevant]")).to_have_attribute("aria-pressed", "true")
        page.keyboard.press("ArrowLeft")
        expect(cards.nth(1)).to_have_attribute("aria-current", "true")
        page.keyboard.press("z")  # zoom it7: its original has no URL here, so Streamlit shows it
        dialog = page.get_by_role("dialog")
        expect(dialog.locator("img")).to_be_visible()
        expect(dialog).to_contain_text("Description of item 7")
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)
        page.screenshot(path=str(tmp_path / "review-q1.png"), full_page=True)
        page.keyboard.press("Enter")  # save and go on: the next unsettled case
        expect(surface).to_have_attribute("data-case-id", str(q2))
        expect(surface.locator(".rv-msg")).to_contain_text("Saved q1")

        # Next without saving and back again.
        page.keyboard.press("s")
        expect(surface).to_have_attribute("data-case-id", str(q1))
        page.keyboard.press("p")
        expect(surface).to_have_attribute("data-case-id", str(q2))

        # q2: the proposed rewrite is shown up front, by a letter; the reviewer rejects instead.
        expect(surface.locator(".rv-opt[data-choice=rewrite]")).to_contain_text("Proposed by A")
        expect(surface.locator(".rv-opt[data-choice=rewrite]")).to_contain_text("Find item two, in blue")
        page.keyboard.press("1")
        expect(surface.locator(".rv-opt[data-choice=rewrite]")).to_have_attribute("aria-pressed", "true")
        page.keyboard.press("x")
        page.keyboard.press("3")  # the third reason: wrong
        expect(surface.locator(".rv-opt[data-choice=reject]")).to_have_attribute("aria-pressed", "true")
        page.keyboard.press("Enter")
        expect(surface.locator(".rv-msg")).to_contain_text("Every case is settled")

        html = page.content() + page.evaluate(SHADOW_HTML)
        page.screenshot(path=str(tmp_path / "review-done.png"), full_page=True)

    reviewer = people["reviewer"]
    case1 = review.load_case(sqlite_db, reviewer, q1)
    assert case1.decision == "accept"
    assert {i.card.ext_id: i.decision for i in case1.items} == {"it2": REL, "it7": REL, "it9": NOT}
    case2 = review.load_case(sqlite_db, reviewer, q2)
    assert (case2.decision, case2.decision_reason) == ("reject", "wrong")

    assert frames, "no websocket frame was seen"
    for name in NAMES:
        assert name not in html
        assert not any(name.encode() in frame for frame in frames), f"{name} crossed the websocket"


def test_an_admin_reveals_who_is_who_and_it_is_logged(server, sqlite_db: Database) -> None:
    from playwright.sync_api import expect

    base, people = server
    q1 = query_id(sqlite_db, "q1")
    with chromium_page() as page:
        log_in(page, base, "admin", PASSWORD, path="review")
        expect(page.locator(SURFACE)).to_have_attribute("data-case-id", str(q1))
        assert "ann1" not in page.content()
        page.get_by_text("Who is who").click()
        page.get_by_role("button", name="Reveal the annotators' names on this case").click()
        expect(page.get_by_text("A = ann1 · B = ann2")).to_be_visible()
    with sqlite_db.read() as s:
        logged = s.scalars(select(NameReveal)).all()
    assert [(r.query_id, r.admin_id, r.admin_name) for r in logged] == [(q1, people["admin"].id, "admin")]
