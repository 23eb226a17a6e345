"""The workbench's Python side without a browser: the data the component gets (data in), the work a
submit from it stores (decision out), and every request it makes (ui/components/workbench)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.models import Candidate, Item, Judgment, Query, QueryRevision, QueryVerdict, RankerRun
from db.session import Database
from services.annotation.queue import next_assignment, progress
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import load_task
from services.core.auth import Actor
from services.core.errors import ValidationError
from services.datasets.assignment import assign
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle
from tests.conftest import make_users
from ui.components.workbench import view
from ui.components.workbench.actions import Desk
from ui.session import KEY_USER

TIMEOUT = 30
SECRET = "a-private-rewrite-of-ann2"


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


def desk(db: Database, user: Actor) -> Desk:
    d = Desk(db, user, "shop", {})
    d.land(None)
    return d


def sent(d: Desk, **work) -> dict:
    task = d.task(d.current)
    base = {"labels": {str(c.item_id): "relevant" for c in task.positives}, "added": {}, "verdict": "accept"}
    return {
        "aid": task.assignment_id,
        "token": f"t-{task.assignment_id}-{time.time_ns()}",
        "ms": 1500,
        "work": {**base, **work},
    }


def test_the_component_gets_the_query_and_only_this_annotators_own_work(shop: Database, people) -> None:
    a, b = people["ann1"], people["ann2"]
    # ann2 rewrites the same query first: nothing of it may reach ann1's page.
    other = desk(shop, b)
    task_b = other.task(other.current)
    submit(
        shop,
        b,
        task_b.assignment_id,
        QueryWork(
            labels={c.item_id: LabelInput("not_relevant", "original") for c in task_b.positives},
            verdict="rewrite",
            rewrite=SECRET,
            client_token="b-1",
        ),
    )
    mine = desk(shop, a)
    data = mine.data()
    assert data["query"]["aid"] == mine.current and data["user"] == a.id
    assert len(data["positives"]) == 2 and data["candidates"]
    assert data["saved"]["labels"] == {} and data["saved"]["verdict"] == "accept"
    assert all(c["thumb"] and c["thumb"].startswith("/qs/media/t/") for c in data["positives"])
    assert "rank" not in data["candidates"][0]  # scores and ranks hidden unless the dataset shows them
    text = json.dumps(data)
    assert SECRET not in text and "ann2" not in text and "not_relevant" not in text
    assert data["limits"] == {"rewrite": 5000, "note": 2000}


def test_a_submit_stores_labels_added_items_with_provenance_and_opens_the_next(
    shop: Database, people
) -> None:
    me = people["ann1"]
    d = desk(shop, me)
    task = d.task(d.current)
    cand = task.candidates[3]
    payload = sent(
        d,
        added={
            str(cand.card.item_id): {"provenance": "candidate"},
            "11": {"provenance": "search", "search": "red top"},
        },
    )
    d.submit(payload)
    assert d.state["wb_ack"] == {"token": payload["token"]} and d.state["wb_notice"]["kind"] == "saved"
    assert d.current != task.assignment_id  # the next query is on screen
    with shop.read() as s:
        rows = {j.item_id: j for j in s.scalars(select(Judgment).where(Judgment.user_id == me.id))}
    assert (
        rows[cand.card.item_id].provenance == "candidate"
        and rows[cand.card.item_id].position_shown == cand.position
    )
    assert rows[11].provenance == "search" and rows[11].provenance_detail == {"text": "red top"}
    # The same submit again (a retry after a lost connection) is stored once.
    d.submit(payload)
    assert d.state["wb_notice"]["text"].startswith("Saved (already stored)")
    assert progress(shop, me, "shop").done == 1


def test_work_from_refuses_what_is_not_on_the_screen(shop: Database, people) -> None:
    me = people["ann1"]
    task = load_task(shop, me, next_assignment(shop, me, "shop"))
    with pytest.raises(ValidationError, match="not a labelled positive"):
        view.work_from({"labels": {"999": "relevant"}}, task, token="t", time_on_task_ms=0)
    with pytest.raises(ValidationError, match="unknown label"):
        view.work_from(
            {"labels": {str(task.positives[0].item_id): "maybe"}}, task, token="t", time_on_task_ms=0
        )
    with pytest.raises(ValidationError, match="same as the query"):
        view.work_from(
            {"verdict": "rewrite", "rewrite": task.original_text}, task, token="t", time_on_task_ms=0
        )
    work = view.work_from(
        {
            "labels": {str(task.positives[0].item_id): "unsure"},
            "verdict": "reject",
            "reason": "other",
            "note": "two things",
        },
        task,
        token="t",
        time_on_task_ms=2500,
    )
    assert work.verdict == "reject" and work.reason == "other" and work.note == "two things"
    assert work.labels[task.positives[0].item_id] == LabelInput("unsure", "original")
    assert work.time_on_task_ms == 2500 and work.client_token == "t"


def test_problems_come_back_as_messages_and_nothing_is_stored(shop: Database, people) -> None:
    me = people["ann1"]
    d = desk(shop, me)
    first = d.current
    d.submit(sent(d, labels={}, verdict="accept"))
    assert (
        d.state["wb_notice"]["kind"] == "problem"
        and "label every labelled positive" in d.state["wb_notice"]["text"]
    )
    d.submit(sent(d, verdict="rewrite", rewrite="x" * 6000))
    assert "limited to 5,000 characters" in d.state["wb_notice"]["text"]
    assert d.current == first and progress(shop, me, "shop").done == 0


def test_drafts_undo_history_previous_skip_and_search_requests(shop: Database, people, monkeypatch) -> None:
    me = people["ann1"]
    d = desk(shop, me)
    first = d.current
    d.draft({"aid": first, "seq": 5, "work": {"labels": {"1": "relevant"}, "verdict": "accept"}})
    assert d.task(first).draft is None or True  # cached task; a fresh load shows the draft
    d.open(first)
    assert d.data()["draft"] == {"work": {"labels": {"1": "relevant"}, "verdict": "accept"}, "seq": 5}
    d.submit(sent(d, verdict="reject", reason="duplicate"))
    second = d.current
    d.nav({"action": "undo"})
    assert d.current == first and d.data()["saved"]["verdict"] == "reject"
    d.history({"req": 7, "show": "reject"})
    assert d.state["wb_history"]["req"] == 7 and [e["aid"] for e in d.state["wb_history"]["entries"]] == [
        first
    ]
    d.nav({"action": "open", "aid": second})
    assert d.current == second
    d.nav({"action": "skip"})
    assert d.current not in (second, None)
    d.nav({"action": "previous"})
    assert d.current == first
    d.nav({"action": "open", "aid": 10_000})
    assert d.state["wb_notice"]["kind"] == "problem"

    def fake_search(db, dataset, *, actor, text=None, like_item=None, k=20):
        from services.ranking.search import SearchHit

        return [SearchHit(item_id=i, rankers={}) for i in (3, 4)]

    monkeypatch.setattr("ui.components.workbench.actions.search_pool", fake_search)
    d.search({"req": 3, "text": "red top"})
    found = d.state["wb_search"]
    assert found["req"] == 3 and found["source"] == "red top" and [h["id"] for h in found["hits"]] == [3, 4]
    d.search({"req": 4, "like": 3, "title": "whatever the page sent"})
    with shop.read() as s:
        title = s.scalar(select(Item.title).where(Item.id == 3))
    assert title and d.state["wb_search"]["label"] == f"More like “{title}”"  # the stored title, not the id
    assert d.state["wb_search"]["source"] == f"more like {title}"


def test_a_search_while_the_index_is_prepared_answers_at_once(shop: Database, people, monkeypatch) -> None:
    from services.ranking.search import SearchPreparing

    def preparing(db, dataset, *, actor, text=None, like_item=None, k=20):
        raise SearchPreparing("Preparing search over this dataset's pool")

    monkeypatch.setattr("ui.components.workbench.actions.search_pool", preparing)
    d = desk(shop, people["ann1"])
    d.search({"req": 1, "text": "red top"})
    answer = d.data()["search"]
    # The component shows the message in its search area and asks again (workbench.js).
    assert answer["req"] == 1 and answer["preparing"].startswith("Preparing search") and answer["hits"] == []
    assert "error" not in answer


def test_the_page_mounts_the_component_for_the_annotators_query(shop: Database, people) -> None:
    me = people["ann1"]
    at = AppTest.from_file("../pages/workbench.py", default_timeout=TIMEOUT)
    at.session_state[KEY_USER] = me
    at.session_state["qs_last_seen"] = time.time()
    at.run()
    assert not at.exception
    task = at.session_state["wb_task"]
    assert task.assignment_id == next_assignment(shop, me, "shop")
    assert at.query_params["a"] in (str(task.assignment_id), [str(task.assignment_id)])
    with shop.read() as s:
        assert (
            s.scalar(select(QueryVerdict.id)) is None
            and s.scalar(select(QueryRevision.id).where(QueryRevision.kind == "rewrite")) is None
        )
