"""The workbench and assignments pages in AppTest: judge, add, verdicts, rewrite, undo, skip, blindness."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.models import Candidate, Item, Judgment, Query, QueryRevision, QueryVerdict, RankerRun
from db.session import Database
from services.annotation.queue import progress
from services.core.auth import Actor
from services.datasets.assignment import assign
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle
from tests.conftest import make_users
from ui.session import KEY_USER

TIMEOUT = 30


@pytest.fixture
def shop(sqlite_db: Database, tmp_path: Path) -> Database:
    import_bundle(sqlite_db, make_bundle(tmp_path / "b", n_items=12, n_queries=4), "shop")
    with sqlite_db.write() as s:
        items = s.scalars(select(Item.id).order_by(Item.id)).all()
        run = RankerRun(dataset_id=s.scalar(select(Query.dataset_id).limit(1)), name="pooled", kind="pooled")
        s.add(run)
        s.flush()
        for qid in s.scalars(select(Query.id)):
            for rank, item in enumerate(items, start=1):
                s.add(
                    Candidate(
                        run_id=run.id, query_id=qid, item_id=item, rank=rank, score=1 / rank, rankers={}
                    )
                )
    return sqlite_db


@pytest.fixture
def people(shop: Database) -> dict[str, Actor]:
    people = make_users(shop)
    assign(shop, "shop", overlap=2)
    return people


def open_page(path: str, user: Actor) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    at.session_state[KEY_USER] = user
    at.session_state["qs_last_seen"] = time.time()
    return at.run()


def my_rows(db: Database, user: Actor):
    with db.read() as s:
        judgments = {
            j.item_id: (j.label, j.provenance)
            for j in s.scalars(select(Judgment).where(Judgment.user_id == user.id))
        }
        verdicts = s.execute(
            select(QueryVerdict.query_id, QueryVerdict.verdict, QueryVerdict.reason).where(
                QueryVerdict.user_id == user.id
            )
        ).all()
    return judgments, verdicts


def segmented_keys(at: AppTest) -> list[str]:
    return [w.key for w in at.get("button_group") if w.key and w.key.startswith("pos_")]


def test_judge_positives_add_a_candidate_and_accept(shop: Database, people) -> None:
    me = people["ann1"]
    at = open_page("../pages/workbench.py", me)
    assert not at.exception
    task = at.session_state["wb_task"]
    keys = segmented_keys(at)
    assert len(keys) == 2
    for key, value in zip(keys, ["Yes", "No"], strict=True):
        next(w for w in at.get("button_group") if w.key == key).set_value(value)
    cand = task.candidates[0]
    at.checkbox(key=f"cand_{task.assignment_id}_{cand.card.item_id}").check()
    at.run()
    at.button(key="wb_submit").click().run()
    assert not at.exception, at.exception
    judgments, verdicts = my_rows(shop, me)
    labels = sorted(label for label, prov in judgments.values() if prov == "original")
    assert labels == ["not_relevant", "relevant"]
    assert judgments[cand.card.item_id] == ("relevant", "candidate")
    assert [(v, r) for _, v, r in verdicts] == [("accept", None)]
    assert at.session_state["wb_task"].assignment_id != task.assignment_id  # moved on


def test_unlabelled_positives_are_refused_with_a_message(shop: Database, people) -> None:
    at = open_page("../pages/workbench.py", people["ann1"])
    at.button(key="wb_submit").click().run()
    assert "label every labelled positive" in " ".join(e.value for e in at.error)
    assert my_rows(shop, people["ann1"]) == ({}, [])


def test_reject_with_reason(shop: Database, people) -> None:
    me = people["ann1"]
    at = open_page("../pages/workbench.py", me)
    aid = at.session_state["wb_task"].assignment_id
    at.radio(key=f"verdict_{aid}").set_value("Reject").run()
    at.selectbox(key=f"reason_{aid}").set_value("unanswerable")
    at.button(key="wb_submit").click().run()
    assert [(v, r) for _, v, r in my_rows(shop, me)[1]] == [("reject", "unanswerable")]


def test_rewrite_keeps_history_then_undo_and_skip(shop: Database, people) -> None:
    me = people["ann1"]
    at = open_page("../pages/workbench.py", me)
    task = at.session_state["wb_task"]
    aid = task.assignment_id
    for key in segmented_keys(at):
        next(w for w in at.get("button_group") if w.key == key).set_value("Yes")
    at.radio(key=f"verdict_{aid}").set_value("Rewrite").run()
    at.text_area(key=f"rewrite_{aid}").input("Find a red cotton top <b>now</b>")
    at.button(key="wb_submit").click().run()
    with shop.read() as s:
        texts = s.scalars(
            select(QueryRevision.text)
            .where(QueryRevision.query_id == task.query_id)
            .order_by(QueryRevision.id)
        ).all()
    assert texts == [task.original_text, "Find a red cotton top <b>now</b>"]

    at.button(key="wb_undo").click().run()
    assert not at.exception
    assert at.session_state["wb_task"].assignment_id == aid
    assert my_rows(shop, me) == ({}, [])
    with shop.read() as s:  # the rewrite stays in the history
        assert s.scalar(select(QueryRevision.id).where(QueryRevision.kind == "rewrite")) is not None

    at.button(key="wb_skip").click().run()
    assert at.session_state["wb_task"].assignment_id != aid
    assert progress(shop, me, "shop").skipped == 1


def test_annotator_b_sees_nothing_of_a(shop: Database, people) -> None:
    a, b = people["ann1"], people["ann2"]
    at = open_page("../pages/workbench.py", a)
    task = at.session_state["wb_task"]
    for key in segmented_keys(at):
        next(w for w in at.get("button_group") if w.key == key).set_value("No")
    at.radio(key=f"verdict_{task.assignment_id}").set_value("Rewrite").run()
    at.text_area(key=f"rewrite_{task.assignment_id}").input("A's private rewrite")
    at.button(key="wb_submit").click().run()
    assert my_rows(shop, a)[1]

    bt = open_page("../pages/workbench.py", b)
    assert not bt.exception
    b_task = bt.session_state["wb_task"]
    assert b_task.query_id == task.query_id  # the same query, overlap 2
    everything = repr(bt.main) + " ".join(str(t.value) for t in bt.text)
    assert "private rewrite" not in everything
    assert all(w.value is None for w in bt.get("button_group") if w.key and w.key.startswith("pos_"))
    assert bt.radio(key=f"verdict_{b_task.assignment_id}").value == "Accept"


def test_workbench_refuses_reviewers_and_empty_queue(shop: Database, people) -> None:
    at = open_page("../pages/workbench.py", people["reviewer"])
    assert "You do not have access to this page." in " ".join(e.value for e in at.error)
    from services.core.auth import add_user

    info = add_user(shop, "newcomer", "annotator", "password123")
    at = open_page("../pages/workbench.py", Actor(info.id, info.name, info.role))
    assert "No queries are assigned to you yet." in " ".join(i.value for i in at.info)


def test_assignments_page_assigns(shop: Database, tmp_path: Path) -> None:
    people = make_users(shop)
    at = open_page("../pages/assignments.py", people["admin"])
    assert not at.exception
    at.number_input(key="assign_overlap").set_value(1)
    at.button(key="assign_go").click().run()
    assert "Assigned 4 new query slots" in " ".join(s.value for s in at.success)
    frame = at.dataframe[0].value
    assert sorted(frame["annotator"]) == ["ann1", "ann2"] and frame["assigned"].sum() == 4
    refused = open_page("../pages/assignments.py", people["ann1"])
    assert "You do not have access to this page." in " ".join(e.value for e in refused.error)
