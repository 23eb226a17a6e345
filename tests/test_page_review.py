"""The review page in AppTest: the case table, the judging surface's data (letters, words, no
names), the admin-only reveal that is logged, and the role gate. Chromium drives the keyboard
(tests/test_browser_review.py)."""

from __future__ import annotations

import json
import time

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.audit import NameReveal
from db.session import Database
from services.core.auth import Actor
from services.review import disputes as review
from tests.test_review import disputed  # noqa: F401 - the fixture
from ui.session import KEY_USER


def open_page(user: Actor) -> AppTest:
    at = AppTest.from_file("../pages/review.py", default_timeout=30)
    at.session_state[KEY_USER] = user
    at.session_state["qs_last_seen"] = time.time()
    return at.run()


def surface_data(at: AppTest) -> dict:
    (surface,) = at.get("bidi_component")
    return json.loads(surface.proto.json)


def test_review_page_shows_the_first_unsettled_case_as_letters(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["reviewer"])
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == ["", "query", "text", "in dispute", "items", "annotators", "settled"]
    assert list(table["query"]) == ["q1", "q2", "q3", "q5", "q6"]
    assert set(table["settled"]) == {"no"} and "verdicts" in set(table["in dispute"])
    data = surface_data(at)
    assert data["ext_id"] == "q1" and data["position"].startswith("Case 1 of 5")
    assert [v["who"] for v in data["verdicts"]] == ["A", "B"]
    assert [v["verdict"] for v in data["verdicts"]] == ["Accepted", "Rejected"]
    assert data["verdicts"][1]["reason"] == "Wrong (positives do not match)"
    everything = json.dumps(data) + repr(at.main)
    assert "ann1" not in everything and "ann2" not in everything

    q2 = next(e.query_id for e in review.review_queue(db, disputed["reviewer"], "shop") if e.ext_id == "q2")
    at.session_state["rv_case"] = q2
    data = surface_data(at.run())
    assert data["ext_id"] == "q2" and [i["ext_id"] for i in data["items"]] == ["it4"]
    assert data["items"][0]["votes"] == [
        {"who": "A", "label": "Relevant", "note": ""},
        {"who": "B", "label": "Not relevant", "note": ""},
    ]
    assert data["counts"] == "2 judged items: 1 in dispute, 1 labelled alike by everyone who labelled it."
    assert not at.expander or all("Who is who" not in e.label for e in at.expander)  # reviewers cannot reveal


def test_an_admin_reveals_names_and_the_reveal_is_logged(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["admin"])
    case = surface_data(at)["case_id"]
    at.button(key=f"rv_reveal_{case}").click().run()
    assert not at.exception
    assert "A = ann1 · B = ann2" in [t.value for t in at.text]
    with db.read() as s:
        rows = s.scalars(select(NameReveal)).all()
    assert [(r.query_id, r.admin_name) for r in rows] == [(case, "admin")]
    assert any("Revealed before: by admin on" in c.value for c in at.caption)


def test_review_page_refuses_annotators(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["ann1"])
    assert "You do not have access to this page." in " ".join(e.value for e in at.error)
