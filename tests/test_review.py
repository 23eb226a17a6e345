"""Review queue on two annotators who disagree in known ways; adjudication; anonymity."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Assignment, ItemAdjudication, Query, QueryRevision
from db.session import Database
from services.annotation.submit import LabelInput, QueryWork
from services.annotation.submit import submit as submit_work
from services.annotation.task import load_task
from services.core.auth import SYSTEM, Actor
from services.core.errors import PermissionDenied, ValidationError
from services.datasets.assignment import assign
from services.ingest.importer import import_bundle
from services.review import disputes as review
from services.review.adjudication import adjudicate
from services.review.reveal import name_reveals, reveal_names
from tests.bundles import add_pooled_candidates, make_bundle


def submit(
    db: Database, who: Actor, query_ext: str, *, positives: list[str], added=(), verdict="accept", **kw
):
    with db.read() as s:
        aid = s.scalar(
            select(Assignment.id).join(Query).where(Assignment.user_id == who.id, Query.ext_id == query_ext)
        )
    task = load_task(db, who, aid)
    labels = {
        c.item_id: LabelInput(lbl, "original") for c, lbl in zip(task.positives, positives, strict=False)
    }
    by_ext = {c.card.ext_id: c for c in task.candidates}
    for ext in added:
        labels[by_ext[ext].card.item_id] = LabelInput("relevant", "candidate", position=by_ext[ext].position)
    submit_work(db, who, aid, QueryWork(labels=labels, verdict=verdict, client_token=uuid.uuid4().hex, **kw))
    return task


@pytest.fixture
def disputed(db: Database, tmp_path: Path, data_dir: Path, users: dict[str, Actor]) -> dict[str, Actor]:
    """q1: verdicts differ; q2: a positive labelled differently; q3: an added positive by one;
    q4: the same decisions; q5: one unsure label; q6: both reject, one as ambiguous."""
    import_bundle(db, make_bundle(tmp_path / "b", n_items=10, n_queries=6), "shop")
    add_pooled_candidates(db, "shop")
    assign(db, "shop", overlap=2)
    a, b = users["ann1"], users["ann2"]
    rel2 = ["relevant", "relevant"]
    submit(db, a, "q1", positives=rel2)
    submit(db, b, "q1", positives=[], verdict="reject", reason="wrong")
    submit(db, a, "q2", positives=rel2)
    submit(db, b, "q2", positives=["relevant", "not_relevant"])
    submit(db, a, "q3", positives=rel2, added=["it9"])
    submit(db, b, "q3", positives=rel2)
    submit(db, a, "q4", positives=rel2, added=["it8"])
    submit(db, b, "q4", positives=rel2, added=["it8"])
    submit(db, a, "q5", positives=["relevant", "unsure"])
    submit(db, b, "q5", positives=rel2)
    submit(db, a, "q6", positives=[], verdict="reject", reason="ambiguous")
    submit(db, b, "q6", positives=[], verdict="reject", reason="ambiguous")
    return users


def test_queue_holds_exactly_the_disagreements(db: Database, disputed) -> None:
    queue = review.review_queue(db, disputed["reviewer"], "shop")
    assert {e.ext_id: e.kinds for e in queue} == {
        "q1": ("verdict",),
        "q2": ("positive",),
        "q3": ("added",),
        "q5": ("positive", "flagged"),
        "q6": ("flagged",),
    }
    assert [e.ext_id for e in review.review_queue(db, disputed["reviewer"], "shop", kind="added")] == ["q3"]
    assert review.review_queue(db, disputed["reviewer"], "shop", category="shoe") == []
    assert review.review_progress(db, disputed["reviewer"], "shop") == review.ReviewProgress(5, 0)


def test_case_shows_every_label_as_letters(db: Database, disputed) -> None:
    entry = next(e for e in review.review_queue(db, disputed["reviewer"], "shop") if e.ext_id == "q3")
    case = review.load_case(db, disputed["reviewer"], entry.query_id)
    assert [i.card.ext_id for i in case.items] == ["it9"]
    assert [(v.annotator, v.label, v.verdict) for v in case.items[0].votes] == [
        ("A", "relevant", "accept"),
        ("B", "not_relevant", "accept"),  # approved the query and left the added item unticked
    ]
    assert case.annotators == ("A", "B") and [v.annotator for v in case.verdicts] == ["A", "B"]
    assert "ann1" not in repr(case) and "ann2" not in repr(case)
    assert (
        case.counts.sentence()
        == "3 judged items: 1 in dispute, 2 labelled alike by everyone who labelled them."
    )


def test_letters_go_on_after_z() -> None:
    assert [review.letter(n) for n in (0, 1, 25, 26, 27, 701, 702)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]


def test_adjudication_resolves_and_newest_wins(db: Database, disputed) -> None:
    reviewer = disputed["reviewer"]
    q3 = next(e for e in review.review_queue(db, reviewer, "shop") if e.ext_id == "q3")
    item = review.load_case(db, reviewer, q3.query_id).items[0].card.item_id
    adjudicate(db, reviewer, q3.query_id, items={item: "not_relevant"}, verdict="accept")
    adjudicate(
        db,
        reviewer,
        q3.query_id,
        items={item: "relevant"},
        verdict="rewrite",
        rewrite_text="Find item 3, exactly",
    )
    case = review.load_case(db, reviewer, q3.query_id)
    assert case.items[0].decision == "relevant" and case.decision == "rewrite"
    with db.read() as s:
        revision = s.get(QueryRevision, case.decision_revision_id)
        assert (revision.kind, revision.text, revision.author_id) == (
            "adjudicated",
            "Find item 3, exactly",
            reviewer.id,
        )
        assert s.scalar(select(ItemAdjudication.reviewer_id).limit(1)) == reviewer.id
    assert review.review_progress(db, reviewer, "shop").resolved == 1


def test_adjudication_input_is_checked(db: Database, disputed) -> None:
    reviewer = disputed["reviewer"]
    q1 = next(e for e in review.review_queue(db, reviewer, "shop") if e.ext_id == "q1")
    with pytest.raises(ValidationError, match="say why"):
        adjudicate(db, reviewer, q1.query_id, items={}, verdict="reject")
    with pytest.raises(ValidationError, match="choose one of the rewrites"):
        adjudicate(db, reviewer, q1.query_id, items={}, verdict="rewrite")
    with pytest.raises(ValidationError, match="relevant or not relevant"):
        adjudicate(db, reviewer, q1.query_id, items={1: "unsure"}, verdict="accept")


def test_annotators_cannot_review(db: Database, disputed) -> None:
    with pytest.raises(PermissionDenied):
        review.review_queue(db, disputed["ann1"], "shop")
    with pytest.raises(PermissionDenied):
        adjudicate(db, disputed["ann2"], 1, items={}, verdict="accept")


def test_only_admins_reveal_names_and_every_reveal_is_logged(db: Database, disputed) -> None:
    entry = next(e for e in review.review_queue(db, disputed["reviewer"], "shop") if e.ext_id == "q3")
    with pytest.raises(PermissionDenied):
        reveal_names(db, disputed["reviewer"], entry.query_id)
    assert reveal_names(db, disputed["admin"], entry.query_id) == {"A": "ann1", "B": "ann2"}
    assert reveal_names(db, SYSTEM, entry.query_id) == {"A": "ann1", "B": "ann2"}
    log = name_reveals(db, disputed["admin"], query_id=entry.query_id)
    assert [(r.dataset, r.query, r.admin) for r in log] == [("shop", "q3", "cli"), ("shop", "q3", "admin")]
    assert name_reveals(db, disputed["admin"], dataset="other") == []
    with pytest.raises(PermissionDenied):
        name_reveals(db, disputed["reviewer"])
