"""In Chromium, on the HTML the browser receives: annotator B sees nothing of annotator A's work,
and hostile query text (HTML, script tags, Markdown links, zero-width characters) stays text."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Assignment, Query
from db.session import Database
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import load_task
from services.datasets.assignment import assign
from services.ingest.importer import import_bundle
from tests.browser import app_server, chromium_page, log_in, require_chromium
from tests.bundles import add_pooled_candidates, make_bundle
from tests.conftest import PASSWORD, make_users

pytestmark = pytest.mark.browser
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> [click me](http://evil.example/x) **bold** zero\u200bwidth'
SECRET = "A-private-rewrite-7f3e"


@pytest.fixture
def server(sqlite_db: Database, data_dir: Path, tmp_path: Path):
    require_chromium()
    bundle = make_bundle(tmp_path / "b", n_items=8, n_queries=2)
    lines = (bundle / "queries.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["text"] = HOSTILE
    lines[0] = json.dumps(first)
    (bundle / "queries.jsonl").write_text("\n".join(lines) + "\n")
    import_bundle(sqlite_db, bundle, "shop")
    add_pooled_candidates(sqlite_db, "shop")
    people = make_users(sqlite_db)
    assign(sqlite_db, "shop", overlap=2)
    a = people["ann1"]
    with sqlite_db.read() as s:
        aid = s.scalar(
            select(Assignment.id).join(Query).where(Assignment.user_id == a.id, Query.ext_id == "q1")
        )
    task = load_task(sqlite_db, a, aid)
    labels = {c.item_id: LabelInput("not_relevant", "original") for c in task.positives}
    labels[task.candidates[0].card.item_id] = LabelInput("relevant", "candidate", position=0)
    submit(
        sqlite_db,
        a,
        aid,
        QueryWork(
            labels=labels,
            verdict="rewrite",
            rewrite=SECRET,
            note=f"{SECRET} note",
            client_token=uuid.uuid4().hex,
        ),
    )
    with app_server(sqlite_db.url, data_dir) as base:
        yield base


def shadow_html(page) -> str:
    """The light DOM and every open shadow root's markup (components v2 render in shadow roots)."""
    return page.evaluate(
        """() => {
          const parts = [document.documentElement.outerHTML];
          const walk = (root) => root.querySelectorAll('*').forEach((el) => {
            if (el.shadowRoot) { parts.push(el.shadowRoot.innerHTML); walk(el.shadowRoot); }
          });
          walk(document);
          return parts.join('\\n');
        }"""
    )


def test_annotator_b_receives_nothing_of_a_and_no_live_markup(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    frames: list[bytes] = []
    with chromium_page() as page:
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived", lambda f: frames.append(f if isinstance(f, bytes) else f.encode())
            ),
        )
        log_in(page, server, "ann2", PASSWORD, path="workbench")
        page.wait_for_selector(".wb[data-shown]", timeout=60_000)
        page.wait_for_timeout(1500)
        html = shadow_html(page)
        page.screenshot(path=str(tmp_path / "blind.png"), full_page=True)
        # Nothing of annotator A: not the rewrite, not the note, not the name — neither in the page
        # (component included) nor in any websocket frame the browser received.
        assert SECRET not in html and "ann1" not in html
        received = b"".join(frames)
        assert received and SECRET.encode() not in received and b"ann1" not in received
        # The hostile query is on screen as text...
        expect(page.locator(".qtext")).to_contain_text("[click me](http://evil.example/x)")
        assert "&lt;script&gt;" in html
        # ...and nothing of it became markup: no script ran, no link or image was made.
        assert page.evaluate("window.__pwned") is None
        assert page.locator("a[href^='http://evil.example']").count() == 0
        assert page.locator("img[src='x']").count() == 0
        for path in ("", "account"):
            page.goto(f"{server}/{path}")
            page.wait_for_timeout(1500)
            assert SECRET not in shadow_html(page)
