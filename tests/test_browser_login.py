"""In Debian's Chromium: log in, and an annotator cannot reach an admin page even by its URL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from db.session import Database
from services.ingest.importer import import_bundle
from tests.browser import app_server, chromium_page, log_in, require_chromium
from tests.bundles import make_bundle
from tests.conftest import PASSWORD, make_users

pytestmark = pytest.mark.browser


@pytest.fixture
def server(sqlite_db: Database, data_dir: Path, tmp_path: Path):
    require_chromium()
    import_bundle(sqlite_db, make_bundle(tmp_path / "bundle"), "shop")
    make_users(sqlite_db)
    with app_server(sqlite_db.url, data_dir) as base:
        yield base


def test_login_and_role_gates_in_chromium(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with chromium_page() as page:
        # The server's very first request is a deep link to an admin page: the login comes
        # first, and after it the annotator sees nothing of the page (and the router's menu).
        log_in(page, server, "ann1", PASSWORD, path="users")
        expect(page.get_by_text("You do not have access to this page.")).to_be_visible()
        html = page.content()
        assert "Add a user" not in html and "Manage a user" not in html and "admin" not in html
        expect(page.get_by_role("heading", name="Users")).to_have_count(0)
        expect(page.get_by_role("link", name="Users")).to_have_count(0)
        page.screenshot(path=str(tmp_path / "refused.png"))

        # A wrong password is refused with a message (after logging out: a reload keeps the login).
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_label("Password", exact=True)).to_be_visible()
        page.goto(server)
        page.get_by_label("User name", exact=True).fill("ann1")
        page.get_by_label("Password", exact=True).fill("not the password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("wrong user name or password")).to_be_visible()

        # The annotator logs in and sees the overview, without admin pages in the navigation.
        log_in(page, server, "ann1", PASSWORD)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.get_by_role("link", name="Workbench")).to_be_visible()
        expect(page.get_by_role("link", name="Users")).to_have_count(0)
        expect(page.get_by_role("link", name="Datasets")).to_have_count(0)
        page.screenshot(path=str(tmp_path / "annotator.png"))

    with chromium_page() as page:
        # The same URL works for an admin: the gate is the role, not the URL.
        log_in(page, server, "admin", PASSWORD, path="users")
        expect(page.get_by_role("heading", name="Users")).to_be_visible()
        expect(page.get_by_text("Add a user")).to_be_visible()
        page.get_by_role("link", name="Datasets").click()
        expect(page.get_by_role("heading", name="Datasets")).to_be_visible()
        expect(page.get_by_role("tab", name="Browse items")).to_be_visible()
        page.screenshot(path=str(tmp_path / "admin.png"))


def test_a_reload_keeps_the_login_until_logout_or_deactivation(server: str, sqlite_db: Database) -> None:
    from playwright.sync_api import expect

    from services.core import auth

    with chromium_page() as page:
        log_in(page, server, "ann1", PASSWORD)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        deadline = time.monotonic() + 20
        while not any(c["name"] == "qs_session" for c in page.context.cookies()):  # set by the app's route
            assert time.monotonic() < deadline, "no session cookie was set"
            page.wait_for_timeout(200)
        cookie = next(c for c in page.context.cookies() if c["name"] == "qs_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie").find("qs_session") == -1  # page scripts cannot read it
        page.reload()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()  # no password asked
        expect(page.get_by_text("Signed in as ann1")).to_be_visible()
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_label("Password", exact=True)).to_be_visible()
        page.wait_for_timeout(1000)
        page.reload()
        expect(page.get_by_label("Password", exact=True)).to_be_visible()  # logged out for good

        log_in(page, server, "ann1", PASSWORD)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        page.wait_for_timeout(1500)
        auth.set_active(sqlite_db, "ann1", False)  # an admin deactivates the account
        page.reload()
        expect(page.get_by_label("Password", exact=True)).to_be_visible()
