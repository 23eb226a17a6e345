"""The study pages in AppTest: a blind rater page, and an admin page that shows scores only once closed."""

from __future__ import annotations

import re
import time

from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from db.session import Database
from db.studies import StudyResponse
from services.core.auth import SYSTEM, Actor
from services.study.admin import close_study, study_info
from services.study.create import create_preference_study
from services.study.rating import load_trial, next_assignment
from tests.test_study import SOURCES, answer_all, by_source, create, paired, ranked  # noqa: F401 - fixtures
from ui.components.rating.answers import save_answer
from ui.session import KEY_USER

# What a rater's page may never carry: a source, a query id, a group key, a system name.
LEAKS = re.compile(r"generated|human|QID-|grp\d|query_id|clip_image|bm25|hybrid", re.IGNORECASE)


def open_page(path: str, user: Actor) -> AppTest:
    at = AppTest.from_file(path, default_timeout=30)
    at.session_state[KEY_USER] = user
    at.session_state["qs_last_seen"] = time.time()
    return at.run()


def sent(at: AppTest) -> str:
    """Every element the page produced, as the protobuf messages sent to the browser."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def test_rate_page_is_blind_and_saves_an_answer(db: Database, paired) -> None:  # noqa: F811
    create(db)
    ann1 = paired["ann1"]
    at = open_page("../pages/rate.py", ann1)
    assert not at.exception
    html = sent(at)
    assert "Query A" in html and "Query B" in html and "Item 1 of 6" in html
    assert not LEAKS.search(html), LEAKS.search(html)
    aid = next_assignment(db, ann1, "study-1")
    assert at.session_state["rate_current"] == {"study-1": aid}
    # What the answer sheet sends on Enter (its keys: 4, 2, a, c + comment, Enter).
    answer = {
        "v": str(aid),
        "scores": {"overall": {"A": 4, "B": 2}},
        "preference": "A",
        "comment": "A is more specific",
    }
    following, problem = save_answer(db, ann1, aid, answer)
    assert problem is None and following == next_assignment(db, ann1, "study-1")
    assert save_answer(db, ann1, aid, {**answer, "v": "999"}) == (None, None)  # not the trial on screen
    at.session_state["rate_current"] = {"study-1": following}
    at.run()
    assert not at.exception
    trial = load_trial(db, ann1, aid)
    assert (trial.my_scores, trial.my_preference, trial.my_comment) == (
        {"overall": {"A": 4, "B": 2}},
        "A",
        "A is more specific",
    )
    html = sent(at)
    assert "1 / 6 answered" in html and "Item 2 of 6" in html
    assert not LEAKS.search(html)


def test_rate_page_of_a_preference_study_is_blind(db: Database, ranked) -> None:  # noqa: F811
    create_preference_study(
        db,
        SYSTEM,
        dataset="shop",
        name="pick",
        systems=["clip_image", "bm25", "hybrid"],
        top_n=3,
        raters=["ann1"],
        raters_per_trial=1,
    )
    at = open_page("../pages/rate.py", ranked["ann1"])
    assert not at.exception
    html = sent(at)
    assert all(f"Option {n}" in html for n in range(1, 7)) and "Option 7" not in html
    assert not LEAKS.search(html), LEAKS.search(html)
    assert not re.search(r"\bq\d\b", html)  # the query ids of this bundle
    aid = next_assignment(db, ranked["ann1"], "pick")
    following, problem = save_answer(db, ranked["ann1"], aid, {"v": str(aid), "preference": "Option 2"})
    assert problem is None
    assert load_trial(db, ranked["ann1"], aid).my_preference == "Option 2"
    at.session_state["rate_current"] = {"pick": following}
    at.run()
    assert not at.exception
    assert "1 / 3 answered" in sent(at)


def test_rate_page_asks_for_every_score(db: Database, paired) -> None:  # noqa: F811
    create(db)
    at = open_page("../pages/rate.py", paired["ann2"])
    aid = next_assignment(db, paired["ann2"], "study-1")
    assert not at.exception
    following, problem = save_answer(
        db, paired["ann2"], aid, {"v": str(aid), "scores": {"overall": {"A": 4}}}
    )
    assert following is None and problem == "score query B on 'overall' from 1 to 5"
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(StudyResponse)) == 0


def test_rate_page_of_a_closed_study_takes_no_answer(db: Database, paired) -> None:  # noqa: F811
    create(db)
    close_study(db, SYSTEM, "study-1")
    at = open_page("../pages/rate.py", paired["reviewer"])
    assert not at.exception
    assert "closed" in " ".join(i.value for i in at.info)
    assert "rate_current" not in at.session_state or not at.session_state["rate_current"]


def test_admin_page_shows_counts_while_open_and_results_once_closed(db: Database, paired) -> None:  # noqa: F811
    create(db)
    answer_all(
        db,
        paired,
        "study-1",
        lambda pos, rater, m: by_source(m, {SOURCES[0]: 3 + pos % 3, SOURCES[1]: 4}, SOURCES[1]),
    )
    at = open_page("../pages/study_admin.py", paired["admin"])
    assert not at.exception
    assert "24 / 24 answers" in sent(at)
    assert not at.get("vega_lite_chart") and not at.get("download_button")
    assert list(at.dataframe[1].value.columns) == ["rater", "answered", "items"]
    assert not re.search(r"mean|preferred|\d\.\d\d", " ".join(str(d.value) for d in at.dataframe))
    assert "Scores stay sealed" in sent(at)

    at.checkbox(key="sa_confirm").check().run()
    at.button(key="sa_close").click().run()
    assert not at.exception
    assert study_info(db, SYSTEM, "study-1").status == "closed"
    assert len(at.get("vega_lite_chart")) == 2  # the score distribution and the preferences
    assert "generated 3.88 vs human 4.00; preference 0 % vs 100 %, tie 0 %" in sent(at)
    assert list(at.dataframe[1].value["source"]) == ["generated", "human", "tie"]
    assert list(at.dataframe[1].value.iloc[2][["mean overall", "ratings", "preferred"]]) == ["—", "—", "0 %"]
    tests = at.dataframe[2].value
    assert list(tests["test"]) == ["Wilcoxon signed-rank", "binomial test", "binomial test"]
    assert not any("None" in d.value.to_string() for d in at.dataframe)
    assert at.get("download_button")


def test_admin_page_creates_a_study(db: Database, paired) -> None:  # noqa: F811
    at = open_page("../pages/study_admin.py", paired["admin"])
    at.text_input(key="sa_name").input("pilot")
    at.number_input(key="sa_sample").set_value(4)
    at.number_input(key="sa_per_trial").set_value(2)
    at.button(key="sa_create").click().run()
    assert not at.exception, at.exception
    info = study_info(db, SYSTEM, "pilot")
    assert (info.n_trials, info.n_assignments, info.compared) == (4, 8, SOURCES)
    assert "created study pilot" in " ".join(s.value for s in at.success)
    at.text_input(key="sa_name").input("human ratings")
    at.button(key="sa_create").click().run()
    assert "may not name 'human'" in " ".join(e.value for e in at.error)


def test_admin_page_defaults_the_sample_to_every_eligible_group(db: Database, paired) -> None:  # noqa: F811
    at = open_page("../pages/study_admin.py", paired["admin"])
    assert "8 groups are eligible; the sample defaults to all of them." in [c.value for c in at.caption]
    assert at.number_input(key="sa_sample").value == 8
    at.multiselect(key="sa_sources").set_value(["generated"]).run()
    assert "Choose what to compare: two sources, or two or more systems." in [c.value for c in at.caption]


def test_study_pages_refuse_the_wrong_people(db: Database, paired) -> None:  # noqa: F811
    create(db, raters=["ann1", "ann2", "reviewer"])
    at = open_page("../pages/study_admin.py", paired["ann1"])
    assert "You do not have access to this page." in " ".join(e.value for e in at.error)
    assert not at.dataframe
    at = open_page("../pages/rate.py", paired["admin"])  # an admin who is a rater of no study
    assert not at.exception and "No study has items for you" in " ".join(i.value for i in at.info)
