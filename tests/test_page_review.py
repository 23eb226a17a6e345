"""The review page in AppTest: the queue, a case without names, a saved adjudication."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

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


def test_review_page_settles_a_case(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["reviewer"])
    assert not at.exception
    assert sorted(at.dataframe[0].value["query"]) == ["q1", "q2", "q3", "q5", "q6"]
    html = repr(at.main)
    assert "ann1" not in html and "ann2" not in html  # names hidden by default
    case = at.selectbox(key="rv_case").value
    loaded = review.load_case(db, disputed["reviewer"], case)
    for item in loaded.items:
        next(w for w in at.get("button_group") if w.key == f"rv_item_{case}_{item.card.item_id}").set_value(
            "Not relevant"
        )
    at.radio(key=f"rv_verdict_{case}").set_value("Reject").run()
    at.selectbox(key=f"rv_reason_{case}").set_value("wrong")
    at.button(key="rv_save").click().run()
    assert not at.exception
    assert review.load_case(db, disputed["reviewer"], case).decision == "reject"
    assert review.review_progress(db, disputed["reviewer"], "shop").resolved == 1


def test_review_page_refuses_annotators(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["ann1"])
    assert "You do not have access to this page." in " ".join(e.value for e in at.error)
