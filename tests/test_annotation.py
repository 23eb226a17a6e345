"""Assignment, the queue, submit, undo, skip: every decision stored once, with provenance."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import (
    Assignment,
    Candidate,
    Item,
    Judgment,
    JudgmentHistory,
    Query,
    QueryRevision,
    QueryVerdict,
    RankerRun,
    Submission,
)
from db.session import Database
from services.annotation.drafts import open_draft, save_draft
from services.annotation.history import last_submitted, my_history
from services.annotation.queue import Progress, next_assignment, previous_assignment, progress, skip
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import Task, load_task
from services.core.auth import Actor
from services.core.errors import PermissionDenied, ValidationError
from services.datasets.assignment import assign
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle


@pytest.fixture
def shop(db: Database, tmp_path: Path, data_dir: Path, users: dict[str, Actor]) -> dict[str, int]:
    """A dataset of 10 items and 4 queries with a pooled candidate run; returns item ids by ext id."""
    import_bundle(db, make_bundle(tmp_path / "b", n_items=10, n_queries=4), "shop")
    with db.write() as s:
        items = {ext: i for i, ext in s.execute(select(Item.id, Item.ext_id))}
        queries = s.execute(select(Query.id)).scalars().all()
        run = RankerRun(dataset_id=s.scalar(select(Query.dataset_id).limit(1)), name="pooled", kind="pooled")
        s.add(run)
        s.flush()
        for qid in queries:
            for rank, ext in enumerate(sorted(items), start=1):
                s.add(
                    Candidate(
                        run_id=run.id,
                        query_id=qid,
                        item_id=items[ext],
                        rank=rank,
                        score=1.0 / rank,
                        rankers={
                            "clip_image": {"rank": rank, "score": 0.5},
                            "bm25": {"rank": rank + 1, "score": 3.0},
                        },
                    )
                )
    return items


def token() -> str:
    return uuid.uuid4().hex


def accept_all(task: Task, **extra: LabelInput) -> QueryWork:
    labels = {c.item_id: LabelInput("relevant", "original") for c in task.positives}
    labels.update({int(k): v for k, v in extra.items()})
    return QueryWork(labels=labels, verdict="accept", client_token=token(), time_on_task_ms=1234)


def test_assignment_is_balanced_with_overlap(db: Database, shop, users) -> None:
    report = assign(db, "shop", overlap=2)
    assert report.n_new == 8 and report.per_annotator == {"ann1": 4, "ann2": 4}
    assert assign(db, "shop", overlap=2).n_new == 0  # idempotent
    with db.read() as s:
        per_query = Counter(q for (q,) in s.execute(select(Assignment.query_id)))
        pairs = s.execute(select(Assignment.query_id, Assignment.user_id)).all()
    assert set(per_query.values()) == {2}
    assert len(pairs) == len(set(pairs))


def test_assignment_with_three_annotators_and_overlap_two(db: Database, shop, users) -> None:
    from services.core.auth import add_user

    add_user(db, "ann3", "annotator", "password123")
    report = assign(db, "shop", overlap=2)
    assert sum(report.per_annotator.values()) == 8
    assert max(report.per_annotator.values()) - min(report.per_annotator.values()) <= 1
    with pytest.raises(ValidationError, match="not active annotators"):
        assign(db, "shop", overlap=3, annotators=["ann1", "reviewer"])


def test_only_admins_assign(db: Database, shop, users) -> None:
    with pytest.raises(PermissionDenied):
        assign(db, "shop", actor=users["ann1"])


def test_submit_stores_labels_with_provenance(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=2)
    me = users["ann1"]
    first = next_assignment(db, me, "shop")
    task = load_task(db, me, first)
    assert task.progress == Progress(0, 4, 0)
    assert len(task.positives) == 2 and task.candidates and not task.show_scores
    positive_ids = {c.item_id for c in task.positives}
    assert not positive_ids & {c.card.item_id for c in task.candidates}
    # Shuffled, but the same order every time for this annotator and query.
    again = load_task(db, me, first)
    assert [c.card.item_id for c in again.candidates] == [c.card.item_id for c in task.candidates]
    assert [c.rank for c in task.candidates] != sorted(c.rank for c in task.candidates)

    cand = task.candidates[3]
    search_item = task.candidates[5].card.item_id
    decision = QueryWork(
        labels={
            **{pid: LabelInput("relevant", "original") for pid in positive_ids},
            cand.card.item_id: LabelInput("relevant", "candidate", position=cand.position),
            search_item: LabelInput("relevant", "search", search_text="red cotton top"),
        },
        verdict="accept",
        client_token=token(),
        time_on_task_ms=4200,
    )
    result = submit(db, me, first, decision)
    assert not result.duplicate and result.next_assignment_id not in (None, first)
    with db.read() as s:
        rows = {j.item_id: j for j in s.scalars(select(Judgment).where(Judgment.user_id == me.id))}
    assert rows[cand.card.item_id].provenance == "candidate"
    assert rows[cand.card.item_id].position_shown == cand.position
    assert rows[cand.card.item_id].shuffle_seed == task.shuffle_seed
    detail = rows[cand.card.item_id].provenance_detail
    assert detail["rank"] == cand.rank and set(detail["rankers"]) == {"clip_image", "bm25"}
    assert rows[search_item].provenance_detail == {"text": "red cotton top"}
    assert progress(db, me, "shop").done == 1


def test_retried_submit_is_stored_once(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=1)
    me = users["ann1"]
    first = next_assignment(db, me, "shop")
    decision = accept_all(load_task(db, me, first))
    one = submit(db, me, first, decision)
    two = submit(db, me, first, decision)
    assert two.duplicate and two.submission_id == one.submission_id
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Judgment)) == 2


def test_incomplete_decisions_are_refused(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=1)
    me = users["ann1"]
    first = next_assignment(db, me, "shop")
    task = load_task(db, me, first)
    with pytest.raises(ValidationError, match="label every labelled positive"):
        submit(db, me, first, QueryWork(labels={}, verdict="accept", client_token=token()))
    with pytest.raises(ValidationError, match="say why"):
        submit(db, me, first, QueryWork(labels={}, verdict="reject", client_token=token()))
    with pytest.raises(ValidationError, match="needs a note"):
        submit(db, me, first, QueryWork(labels={}, verdict="reject", reason="other", client_token=token()))
    with pytest.raises(ValidationError, match="new query text"):
        submit(
            db, me, first, QueryWork(labels={}, verdict="rewrite", rewrite=" \u200b", client_token=token())
        )
    with pytest.raises(ValidationError, match="search text"):
        bad = accept_all(task, **{str(task.candidates[0].card.item_id): LabelInput("relevant", "search")})
        submit(db, me, first, bad)
    # A rejection needs no labels.
    submit(db, me, first, QueryWork(labels={}, verdict="reject", reason="ambiguous", client_token=token()))


def test_verdicts_and_rewrite_history(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=1)
    me = users["ann1"]
    first = next_assignment(db, me, "shop")
    task = load_task(db, me, first)
    labels = accept_all(task).labels
    submit(
        db,
        me,
        first,
        QueryWork(labels=labels, verdict="rewrite", rewrite="Find the blue item", client_token=token()),
    )
    submit(
        db,
        me,
        first,
        QueryWork(labels=labels, verdict="rewrite", rewrite="Find the navy item", client_token=token()),
    )
    task = load_task(db, me, first)
    assert task.text == "Find the navy item" and task.original_text == "Find item 1"
    assert [t for _, t in task.my_rewrites] == ["Find the blue item", "Find the navy item"]
    with db.read() as s:
        revisions = s.execute(
            select(QueryRevision.kind, QueryRevision.text, QueryRevision.author_id)
            .where(QueryRevision.query_id == task.query_id)
            .order_by(QueryRevision.id)
        ).all()
    assert revisions == [
        ("original", "Find item 1", None),
        ("rewrite", "Find the blue item", me.id),
        ("rewrite", "Find the navy item", me.id),
    ]
    submit(
        db,
        me,
        first,
        QueryWork(
            labels={}, verdict="reject", reason="other", note="two products at once", client_token=token()
        ),
    )
    with db.read() as s:
        verdict = s.scalar(select(QueryVerdict).where(QueryVerdict.user_id == me.id))
    assert (verdict.verdict, verdict.reason, verdict.note, verdict.revision_id) == (
        "reject",
        "other",
        "two products at once",
        None,
    )


def test_changed_label_keeps_history(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=1)
    me = users["ann1"]
    first = next_assignment(db, me, "shop")
    task = load_task(db, me, first)
    submit(db, me, first, accept_all(task))
    pid = task.positives[0].item_id
    labels = dict(accept_all(task).labels)
    labels[pid] = LabelInput("not_relevant", "original")
    submit(db, me, first, QueryWork(labels=labels, verdict="accept", client_token=token()))
    with db.read() as s:
        j = s.scalar(select(Judgment).where(Judgment.user_id == me.id, Judgment.item_id == pid))
        history = s.scalars(select(JudgmentHistory.label).where(JudgmentHistory.judgment_id == j.id)).all()
    assert j.label == "not_relevant" and history == ["relevant"]


def test_undo_reopens_the_last_query_with_its_answers_and_a_resubmit_replaces_them(
    db: Database, shop, users
) -> None:
    assign(db, "shop", overlap=1)
    me = users["ann1"]
    first = next_assignment(db, me, "shop")
    task = load_task(db, me, first)
    submit(db, me, first, accept_all(task))
    extra = task.candidates[0]
    second = accept_all(task, **{str(extra.card.item_id): LabelInput("relevant", "candidate", position=0)})
    submit(
        db,
        me,
        first,
        QueryWork(
            labels=second.labels,
            verdict="reject",
            reason="duplicate",
            note="same as q2",
            client_token=token(),
        ),
    )
    done_before = progress(db, me, "shop").done
    # Undo reopens the last submitted query with the answers given, and changes nothing stored.
    assert last_submitted(db, me, "shop") == first
    reopened = load_task(db, me, first)
    assert (
        reopened.my_verdict == "reject"
        and reopened.my_reason == "duplicate"
        and reopened.my_note == "same as q2"
    )
    assert reopened.my_labels[extra.card.item_id] == "relevant" and reopened.status == "done"
    assert progress(db, me, "shop").done == done_before
    # Resubmitting replaces the answers; the judgment history keeps both.
    submit(db, me, first, accept_all(reopened))
    task = load_task(db, me, first)
    assert task.my_verdict == "accept" and task.my_labels[extra.card.item_id] == "not_relevant"
    with db.read() as s:
        j = s.scalar(
            select(Judgment).where(Judgment.user_id == me.id, Judgment.item_id == extra.card.item_id)
        )
        history = s.scalars(select(JudgmentHistory.label).where(JudgmentHistory.judgment_id == j.id)).all()
        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.user_id == me.id)) == 3
    assert history == ["relevant"]


def test_history_lists_finished_and_skipped_queries_newest_first(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=1, annotators=["ann1"])
    me = users["ann1"]
    a1 = next_assignment(db, me, "shop")
    submit(db, me, a1, accept_all(load_task(db, me, a1)))
    a2 = next_assignment(db, me, "shop")
    submit(db, me, a2, QueryWork(labels={}, verdict="reject", reason="wrong", client_token=token()))
    a3 = next_assignment(db, me, "shop")
    skip(db, me, a3)
    everything = my_history(db, me, "shop")
    assert [e.assignment_id for e in everything.entries] == [
        a2,
        a1,
        a3,
    ]  # finished newest first, then skipped
    assert everything.total == 3
    assert [e.assignment_id for e in my_history(db, me, "shop", show="reject").entries] == [a2]
    assert [e.assignment_id for e in my_history(db, me, "shop", show="skipped").entries] == [a3]
    with pytest.raises(ValidationError, match="show one of"):
        my_history(db, me, "shop", show="mine")
    # Previous walks back through every finished query, not only the last two.
    assert previous_assignment(db, me, "shop", before=None) == a2
    assert previous_assignment(db, me, "shop", before=a2) == a1
    assert previous_assignment(db, me, "shop", before=a1) is None


def test_drafts_keep_the_newest_work_and_go_when_the_query_is_submitted(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=1, annotators=["ann1"])
    me, other = users["ann1"], users["ann2"]
    first = next_assignment(db, me, "shop")
    work = {"labels": {"1": "relevant"}, "verdict": "accept"}
    assert save_draft(db, me, first, work, seq=2)
    assert not save_draft(db, me, first, {"verdict": "reject"}, seq=1)  # an older write arriving late
    task = load_task(db, me, first)
    assert task.draft == work and task.draft_seq == 2
    assert open_draft(db, me, "shop") == first
    with pytest.raises(PermissionDenied):
        save_draft(db, other, first, work, seq=3)
    with pytest.raises(ValidationError, match="a draft is an object"):
        save_draft(db, me, first, {"labels": {}, "evil": 1}, seq=3)
    with pytest.raises(ValidationError, match="limited to"):
        save_draft(db, me, first, {"note": "x" * 300_000}, seq=3)
    submit(db, me, first, accept_all(task))
    assert load_task(db, me, first).draft is None and open_draft(db, me, "shop") is None


def test_skip_returns_later_and_previous_goes_back(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=1, annotators=["ann1"])
    me = users["ann1"]
    order = []
    current = next_assignment(db, me, "shop")
    skip(db, me, current)
    skipped = current
    for _ in range(3):
        current = next_assignment(db, me, "shop")
        assert current != skipped
        order.append(current)
        submit(db, me, current, accept_all(load_task(db, me, current)))
    assert next_assignment(db, me, "shop") == skipped  # skipped ones come back last
    assert previous_assignment(db, me, "shop", before=None) == order[-1]
    assert progress(db, me, "shop") == Progress(3, 4, 1)


def test_annotators_are_blind_to_each_other(db: Database, shop, users) -> None:
    assign(db, "shop", overlap=2)
    a, b = users["ann1"], users["ann2"]
    shared = next_assignment(db, a, "shop")
    task_a = load_task(db, a, shared)
    submit(
        db,
        a,
        shared,
        QueryWork(
            labels=accept_all(task_a).labels,
            verdict="rewrite",
            rewrite="A's secret rewrite",
            client_token=token(),
        ),
    )
    with pytest.raises(PermissionDenied):
        load_task(db, b, shared)
    with db.read() as s:
        b_same = s.scalar(
            select(Assignment.id).where(Assignment.user_id == b.id, Assignment.query_id == task_a.query_id)
        )
    task_b = load_task(db, b, b_same)
    assert task_b.my_labels == {} and task_b.my_verdict is None and task_b.my_rewrites == []
    assert task_b.text == task_a.original_text
    assert "secret" not in repr(task_b)
    with pytest.raises(PermissionDenied):
        submit(db, b, shared, accept_all(task_a))
