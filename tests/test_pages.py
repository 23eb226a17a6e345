"""Every page opened with AppTest: it renders, it acts, and it refuses the wrong role."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db.session import Database
from services.core import auth
from services.core.auth import Actor
from services.datasets import catalog as datasets
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle
from tests.conftest import PASSWORD, make_users
from ui.session import KEY_USER

TIMEOUT = 30


@pytest.fixture
def app_db(sqlite_db: Database, tmp_path: Path) -> Database:
    import_bundle(sqlite_db, make_bundle(tmp_path / "bundle"), "shop")
    return sqlite_db


@pytest.fixture
def people(app_db: Database) -> dict[str, Actor]:
    return make_users(app_db)


def page(path: str, user: Actor | None) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    if user is not None:
        at.session_state[KEY_USER] = user
        at.session_state["qs_last_seen"] = __import__("time").time()
    return at.run()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [t.value for t in at.title]
    parts += [w.value for w in at.warning] + [i.value for i in at.info] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def test_app_shows_login_when_logged_out(people) -> None:
    at = page("../app.py", None)
    assert not at.exception
    assert at.text_input(key="login_name") is not None
    assert "Overview" not in texts(at)
    assert len(at.sidebar.children) == 0 or not at.sidebar.button


def test_login_then_logout(people) -> None:
    at = page("../app.py", None)
    at.text_input(key="login_name").input("ann1")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state[KEY_USER].name == "ann1"
    # AppTest reruns only the last page after the first run, not the router; a fresh AppTest
    # with the session the login produced shows what the browser shows next.
    app = page("../app.py", at.session_state[KEY_USER])
    assert not app.exception
    assert "Overview" in texts(app)
    assert "ann1" in " ".join(c.value for c in app.sidebar.caption)
    app.sidebar.button(key="logout").click().run()
    assert KEY_USER not in app.session_state


def test_login_with_wrong_password_shows_an_error(people) -> None:
    at = page("../app.py", None)
    at.text_input(key="login_name").input("ann1")
    at.text_input(key="login_password").input("wrong password")
    at.button[0].click().run()
    assert "wrong user name or password" in texts(at)
    assert KEY_USER not in at.session_state


def test_expired_session_goes_back_to_login(people, monkeypatch) -> None:
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    at.session_state[KEY_USER] = people["ann1"]
    at.session_state["qs_last_seen"] = 0.0  # long ago
    at.run()
    assert KEY_USER not in at.session_state
    assert "expired" in texts(at)


def test_home_lists_datasets(people) -> None:
    at = page("../pages/home.py", people["ann1"])
    assert not at.exception
    assert "Overview" in texts(at)
    frame = at.dataframe[0].value
    assert list(frame["dataset"]) == ["shop"] and list(frame["items"]) == [6]


@pytest.mark.parametrize("path", ["../pages/datasets.py", "../pages/users.py"])
@pytest.mark.parametrize("who", ["ann1", "reviewer"])
def test_admin_pages_show_nothing_to_other_roles(people, path: str, who: str) -> None:
    at = page(path, people[who])
    assert not at.exception
    assert "You do not have access to this page." in texts(at)
    assert len(at.dataframe) == 0 and len(at.text_input) == 0
    assert [b.key for b in at.button] == ["logout"]  # the account box only


@pytest.mark.parametrize(
    "path", ["../pages/home.py", "../pages/datasets.py", "../pages/users.py", "../pages/account.py"]
)
def test_pages_need_a_login(people, path: str) -> None:
    at = page(path, None)
    assert not at.exception
    assert at.text_input(key="login_name") is not None  # the login form, and nothing else
    assert len(at.dataframe) == 0 and len(at.text_area) == 0 and len(at.text_input) == 2


def test_datasets_page_edits_guidelines_and_settings(app_db: Database, people) -> None:
    at = page("../pages/datasets.py", people["admin"])
    assert not at.exception
    assert list(at.dataframe[0].value["dataset"]) == ["shop"]
    at.text_area(key="guidelines_shop").input("## Rules\nMark **exact** matches only.")
    at.button(key="save_guidelines").click().run()
    assert datasets.get_guidelines(app_db, "shop").startswith("## Rules")
    at.number_input(key="settings_k").set_value(50)
    at.checkbox(key="settings_show_scores").check()
    at.button(key="settings_save").click().run()
    summary = datasets.list_datasets(app_db)[0]
    assert summary.settings.k == 50 and summary.settings.show_scores is True
    assert len(at.image) == 6  # the browse tab shows the thumbnails


def test_datasets_page_imports_a_bundle_and_reports_errors(app_db: Database, people, tmp_path: Path) -> None:
    good = make_bundle(tmp_path / "second")
    at = page("../pages/datasets.py", people["admin"])
    at.text_input(key="import_path").input(str(good))
    at.text_input(key="import_name").input("second")
    at.button(key="import_go").click().run()
    assert not at.exception
    assert "Imported second" in texts(at)
    at.text_input(key="import_path").input(str(tmp_path / "missing"))
    at.text_input(key="import_name").input("third")
    at.button(key="import_go").click().run()
    assert "Nothing was imported" in texts(at)
    assert [d.name for d in datasets.list_datasets(app_db)] == ["second", "shop"]


def test_users_page_adds_a_user(app_db: Database, people) -> None:
    at = page("../pages/users.py", people["admin"])
    assert not at.exception
    assert set(at.dataframe[0].value["name"]) == {"admin", "reviewer", "ann1", "ann2"}
    at.text_input[0].input("carol")
    at.selectbox[0].select("reviewer")
    at.text_input[1].input("carol's password")
    at.button[0].click().run()
    assert not at.exception
    assert auth.authenticate(app_db, "carol", "carol's password").role == "reviewer"


def test_account_page_changes_password(app_db: Database, people) -> None:
    at = page("../pages/account.py", people["ann2"])
    assert not at.exception
    at.text_input[0].input(PASSWORD)
    at.text_input[1].input("another password")
    at.text_input[2].input("another password")
    at.button[0].click().run()
    assert "Password changed." in texts(at)
    assert auth.authenticate(app_db, "ann2", "another password").name == "ann2"
