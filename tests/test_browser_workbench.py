"""In Debian's Chromium, an annotator works the demo from the keyboard alone, and nothing is lost:
not across a reload, an undo, the history list, an over-long rewrite, or a server restart."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select, text

from db.models import Draft, Judgment, JudgmentHistory, QueryRevision, QueryVerdict, Submission
from models.embedder import DEMO_CHECKPOINT
from services.datasets.assignment import assign
from services.ranking.rank import rank_dataset
from tests.browser import chromium_page, free_port, log_in, ranked_demo, require_chromium, start_app, stop_app
from tests.conftest import PASSWORD, make_users

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not DEMO_CHECKPOINT.is_file(), reason="the demo CLIP checkpoint is not built"),
]
WAIT = 60_000


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory):
    """One ranked demo for the module (embedding is the slow part): 200 items, 16 queries."""
    require_chromium()
    root = tmp_path_factory.mktemp("wb")
    with ranked_demo(root, items=200, queries=16, seed=5, k=40) as (db, data_dir):
        yield db, data_dir, make_users(db)


@pytest.fixture
def server(demo_db):
    """A fresh queue for ann1 each test (the earlier test's work is cleared), and the app."""
    db, data_dir, people = demo_db
    with db.write() as s:
        for table in (
            "judgment_history",
            "judgments",
            "query_verdicts",
            "drafts",
            "submissions",
            "assignments",
        ):
            s.execute(text(f"DELETE FROM {table}"))
    assign(db, "demo", overlap=1, annotators=["ann1"])
    port = free_port()
    proc = start_app(db.url, data_dir, port)
    try:
        yield {
            "db": db,
            "base": f"http://127.0.0.1:{port}",
            "port": port,
            "data_dir": data_dir,
            "proc": proc,
            "people": people,
        }
    finally:
        stop_app(proc)


def open_workbench(page, base: str):
    log_in(page, base, "ann1", PASSWORD, path="workbench")
    page.wait_for_selector(".wb[data-shown]", timeout=WAIT)
    return page.locator(".wb")


def next_query(page, previous: str) -> str:
    try:
        page.wait_for_selector(f".wb[data-shown]:not([data-query-id='{previous}'])", timeout=WAIT)
    except Exception:
        message = page.locator(".msg").inner_text()
        raise AssertionError(f"query {previous} did not move on; the page says: {message!r}") from None
    return page.locator(".wb").get_attribute("data-query-id")


def keys(page, *presses: str) -> None:
    for key in presses:
        page.keyboard.press(key)


def test_an_annotator_works_five_demo_queries_from_the_keyboard_alone(server) -> None:
    db, me = server["db"], server["people"]["ann1"]
    with chromium_page() as page:
        wb = open_workbench(page, server["base"])
        page.evaluate("window.__keys = 0; document.addEventListener('keydown', () => window.__keys++, true)")
        q = wb.get_attribute("data-query-id")
        # 1. Nothing to change: two keystrokes.
        keys(page, "a", "Enter")
        q = next_query(page, q)
        assert page.evaluate("window.__keys") == 2
        # 2. A missed positive on the first screen: three more (section, card number, toggle).
        keys(page, "a", "Tab", "3", " ")
        assert page.locator(".grid.cand .card").nth(2).get_attribute("class").count("on") == 1
        keys(page, "Enter")
        q = next_query(page, q)
        # 3. Rejected, with a reason picked by number.
        keys(page, "x", "2")
        assert page.locator(".reasons [aria-checked='true']").count() == 1
        keys(page, "Enter")
        q = next_query(page, q)
        # 4. Rewritten: r opens the text box on the query's text.
        keys(page, "a", "r", "End")
        page.keyboard.type(" in red")
        keys(page, "Control+Enter")
        q = next_query(page, q)
        # 5. A positive judged wrong, a pool search, a result added.
        keys(page, "n", "a", "/")
        page.keyboard.type("hat")
        keys(page, "Enter")
        page.wait_for_selector(".grid.res .card", timeout=WAIT)
        keys(page, " ", "Enter")
        next_query(page, q)
        page.screenshot(path=str(server["data_dir"] / "workbench.png"))

    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.user_id == me.id)) == 5
        verdicts = [v for (v,) in s.execute(select(QueryVerdict.verdict).order_by(QueryVerdict.id))]
        assert verdicts == ["accept", "accept", "reject", "rewrite", "accept"]
        assert s.scalar(select(QueryVerdict.reason).where(QueryVerdict.verdict == "reject")) == "unanswerable"
        assert s.scalar(select(QueryRevision.text).where(QueryRevision.kind == "rewrite")).endswith(" in red")
        added = s.execute(
            select(Judgment.provenance, Judgment.provenance_detail).where(Judgment.provenance != "original")
        ).all()
        assert sorted(p for p, _ in added) == ["candidate", "search"]
        assert {"text": "hat"} in [d for p, d in added if p == "search"]
        assert (
            s.scalar(select(func.count()).select_from(Judgment).where(Judgment.label == "not_relevant")) == 1
        )


def test_more_like_this_from_a_search_result_is_headed_by_the_items_title(server) -> None:
    from playwright.sync_api import expect

    with chromium_page() as page:
        open_workbench(page, server["base"])
        keys(page, "/")
        page.keyboard.type("hat")
        keys(page, "Enter")
        page.wait_for_selector(".grid.res .card", timeout=WAIT)
        result = page.locator(".grid.res .card").first
        title, item = result.locator("h4").inner_text(), result.get_attribute("data-item")
        result.locator("button.like").click()
        heading = page.get_by_role("heading", name=f"More like “{title}”", exact=True)
        expect(heading).to_be_visible(timeout=WAIT)
        assert heading.evaluate("h => h.classList.contains('res-label')")
        # The results are the item's look-alikes, the item itself left out.
        page.wait_for_selector(".grid.res .card", timeout=WAIT)
        shown = page.locator(".grid.res .card").evaluate_all("cs => cs.map((c) => c.dataset.item)")
        assert shown and item not in shown


def test_a_reload_mid_query_keeps_the_login_and_the_marks(server) -> None:
    db = server["db"]
    with chromium_page() as page:
        wb = open_workbench(page, server["base"])
        q = wb.get_attribute("data-query-id")
        keys(page, "n", "Tab", "2", " ")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the server draft follows within about a second
            with db.read() as s:
                if s.scalar(select(Draft.id)) is not None:
                    break
            time.sleep(0.2)
        page.reload()
        page.wait_for_selector(f".wb[data-shown][data-query-id='{q}']", timeout=WAIT)
        assert page.get_by_label("Password", exact=True).count() == 0  # still logged in
        assert page.locator(".card.pos").first.get_attribute("data-label") == "not_relevant"
        assert page.locator(".grid.cand .card").nth(1).get_attribute("class").count("on") == 1


def test_undo_reopens_with_the_answers_and_history_reaches_older_queries(server) -> None:
    db = server["db"]
    with chromium_page() as page:
        wb = open_workbench(page, server["base"])
        first = wb.get_attribute("data-query-id")
        keys(page, "x", "4", "Enter")  # rejected as a duplicate
        second = next_query(page, first)
        keys(page, "a", "Enter")
        third = next_query(page, second)
        keys(page, "Backspace")  # undo: the second query again, with its answers
        page.wait_for_selector(f".wb[data-shown][data-query-id='{second}']", timeout=WAIT)
        assert page.locator(".card.pos").first.get_attribute("data-label") == "relevant"
        keys(page, "n", "Enter")  # changed mind: resubmitting replaces the answer
        next_query(page, second)
        keys(page, "o")
        page.wait_for_selector(".history li[data-aid]", timeout=WAIT)
        keys(page, "ArrowDown", "Enter")  # the older of the two
        page.wait_for_selector(f".wb[data-shown][data-query-id='{first}']", timeout=WAIT)
        assert page.locator(".choices [data-verdict='reject']").get_attribute("aria-checked") == "true"
        assert page.locator(".reasons [data-reason='duplicate']").get_attribute("aria-checked") == "true"
    assert third != second
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 3
        assert s.scalar(select(func.count()).select_from(JudgmentHistory)) == 1  # the changed label kept


def test_a_rewrite_over_the_limit_is_refused_where_it_is_typed(server) -> None:
    with chromium_page() as page:
        open_workbench(page, server["base"])
        keys(page, "r", "Control+a")
        page.keyboard.insert_text("y" * 6000)
        box = page.locator(".rewrite-text")
        assert len(box.input_value()) < 6000
        assert "limited to 5,000 characters" in page.locator(".msg").inner_text()
        keys(page, "Control+a")
        page.keyboard.insert_text("y" * 4990)
        page.keyboard.type("z" * 20)
        assert len(box.input_value()) == 5000
        assert page.locator(".counter").inner_text().startswith("5,000 / 5,000")
        assert (
            "10 more refused" in page.locator(".msg").inner_text()
            or "more refused" in page.locator(".msg").inner_text()
        )


def test_a_server_restart_mid_query_loses_no_mark(server) -> None:
    db = server["db"]
    with chromium_page() as page:
        wb = open_workbench(page, server["base"])
        q = wb.get_attribute("data-query-id")
        keys(page, "n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.read() as s:
                if s.scalar(select(Draft.id)) is not None:
                    break
            time.sleep(0.2)
        stop_app(server["proc"])
        page.wait_for_selector(".wb.offline", timeout=WAIT)
        assert "Not connected" in page.locator(".banner").inner_text()
        keys(page, "Tab", "1", " ")  # marked while the server is down: kept in the browser
        server["proc"] = start_app(db.url, server["data_dir"], server["port"])
        page.wait_for_selector(".wb:not(.offline)", timeout=WAIT)
        page.wait_for_selector(f".wb[data-shown][data-query-id='{q}']", timeout=WAIT)
        assert page.locator(".card.pos").first.get_attribute("data-label") == "not_relevant"
        assert page.locator(".grid.cand .card").first.get_attribute("class").count("on") == 1
        keys(page, "a", "Enter")
        next_query(page, q)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 1
        assert (
            s.scalar(select(func.count()).select_from(Judgment).where(Judgment.provenance == "candidate"))
            == 1
        )


def test_images_refused_once_are_asked_for_again_and_shown(server) -> None:
    """Right after a login the first image requests can beat the session cookie (a 401): the
    page asks again, later, and the annotator sees pictures, not grey boxes."""
    refused: set[str] = set()

    def first_time_401(route) -> None:
        path = route.request.url.split("?")[0]
        if path not in refused:
            refused.add(path)
            route.fulfill(status=401, body="no session yet")
        else:
            route.continue_()

    with chromium_page() as page:
        page.route("**/qs/media/t/**", first_time_401)
        open_workbench(page, server["base"])
        imgs = page.locator(".card.pos img")  # locators reach into the component's shadow root
        loaded = "els => els.length > 0 && els.every(i => i.complete && i.naturalWidth > 0)"
        deadline = time.monotonic() + 30
        while not imgs.evaluate_all(loaded) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert imgs.evaluate_all(loaded), "the positives' images never loaded after a 401"
        assert refused  # the refusal did happen
        first = page.locator(".card.pos img").first
        assert first.get_attribute("data-retry") == "1"


def test_a_search_while_the_index_is_prepared_says_so_then_shows_results(server) -> None:
    """A re-rank (here by another process: this test's) makes the server's search index stale; the
    first search after it is answered at once with "preparing search" in the search area, and the
    page asks again until the results come."""
    with chromium_page() as page:
        open_workbench(page, server["base"])
        rank_dataset(server["db"], "demo", k=40)  # a new ranking version; no index built for it
        keys(page, "/")
        page.keyboard.type("hat")
        keys(page, "Enter")
        page.wait_for_selector(".res-wrap[data-preparing]", timeout=WAIT)
        assert "Preparing search" in page.locator(".res-label").inner_text()
        page.wait_for_selector(".grid.res .card", timeout=WAIT)
        assert page.locator(".res-wrap[data-preparing]").count() == 0
        assert page.locator(".res-label").inner_text() == "Results for “hat”"
