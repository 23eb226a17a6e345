"""Issue 13's scenario: two annotators judge items differently and one of them rejects the query.

Every item label that differs between them is a dispute (whatever the verdicts), the count
sentence is computed from the same votes, a reviewer must decide each disputed item unless they
reject the query (the rule lives in the service, so every caller obeys it), and the export's
changes.csv says on whose labels each such item was kept or removed.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Assignment, Item, Judgment, Query
from db.session import Database
from services.annotation.submit import LabelInput, QueryWork
from services.annotation.submit import submit as submit_work
from services.annotation.task import load_task
from services.core.auth import Actor
from services.core.errors import ValidationError
from services.datasets.assignment import assign
from services.export.export import export_dataset
from services.ingest.importer import import_bundle
from services.review import disputes as review
from services.review.adjudication import adjudicate
from tests.bundles import add_pooled_candidates, make_bundle

REL, NOT = "relevant", "not_relevant"


def work(db: Database, who: Actor, query: str, labels: dict[str, str], verdict: str, **kw) -> None:
    """Submit ``labels`` ({item ext id: label}) for ``query``: positives as original, others as candidates."""
    with db.read() as s:
        aid = s.scalar(
            select(Assignment.id).join(Query).where(Assignment.user_id == who.id, Query.ext_id == query)
        )
    task = load_task(db, who, aid)
    positives = {c.ext_id: c.item_id for c in task.positives}
    candidates = {c.card.ext_id: c for c in task.candidates}
    out = {}
    for ext, label in labels.items():
        if ext in positives:
            out[positives[ext]] = LabelInput(label, "original")
        else:
            out[candidates[ext].card.item_id] = LabelInput(
                label, "candidate", position=candidates[ext].position
            )
    submit_work(db, who, aid, QueryWork(labels=out, verdict=verdict, client_token=uuid.uuid4().hex, **kw))


@pytest.fixture
def scenario(db: Database, tmp_path: Path, data_dir: Path, users: dict[str, Actor]) -> dict[str, Actor]:
    """q1 (positives it2, it3): ann1 accepts, saying yes to both and adding it9; ann2 says no to it2
    and it9, yes to it3, adds it7, leaves it8 alone like ann1 did not, and rejects the query.
    q2 (positives it3, it4): ann1 says yes to both and accepts; ann2 says no to both and rejects.
    q3 (positives it4, it5): both accept and both say no to it4 (no dispute: a plain removal)."""
    import_bundle(db, make_bundle(tmp_path / "b", n_items=10, n_queries=3), "shop")
    add_pooled_candidates(db, "shop")
    assign(db, "shop", overlap=2)
    a, b = users["ann1"], users["ann2"]
    work(db, a, "q1", {"it2": REL, "it3": REL, "it9": REL, "it8": NOT}, "accept")
    work(db, b, "q1", {"it2": NOT, "it3": REL, "it9": NOT, "it7": REL}, "reject", reason="wrong")
    work(db, a, "q2", {"it3": REL, "it4": REL}, "accept")
    work(db, b, "q2", {"it3": NOT, "it4": NOT}, "reject", reason="wrong")
    work(db, a, "q3", {"it4": NOT, "it5": REL}, "accept")
    work(db, b, "q3", {"it4": NOT, "it5": REL}, "accept")
    return users


def stored_differences(db: Database, query: str) -> set[str]:
    """Items two annotators stored different labels for, read straight from the judgments."""
    with db.read() as s:
        rows = s.execute(
            select(Item.ext_id, Judgment.label)
            .join(Item, Item.id == Judgment.item_id)
            .join(Query, Query.id == Judgment.query_id)
            .where(Query.ext_id == query)
        ).all()
    labels: dict[str, set[str]] = {}
    for ext, label in rows:
        labels.setdefault(ext, set()).add(label)
    return {ext for ext, seen in labels.items() if len(seen) > 1}


def case_of(db: Database, reviewer: Actor, query: str) -> review.ReviewCase:
    entry = next(e for e in review.review_queue(db, reviewer, "shop") if e.ext_id == query)
    return review.load_case(db, reviewer, entry.query_id)


def test_review_lists_every_differing_item_with_the_right_count(db: Database, scenario) -> None:
    reviewer = scenario["reviewer"]
    queue = {e.ext_id: e for e in review.review_queue(db, reviewer, "shop")}
    assert set(queue) == {"q1", "q2"}  # q3: both said the same
    assert (queue["q1"].n_items, queue["q2"].n_items) == (3, 2)

    q1 = case_of(db, reviewer, "q1")
    shown = [i.card.ext_id for i in q1.items]
    assert shown == ["it2", "it7", "it9"]  # the labelled positive first
    assert stored_differences(db, "q1") <= set(shown)  # it2 and it9: stored labels differ
    votes = {i.card.ext_id: [(v.annotator, v.label, v.verdict) for v in i.votes] for i in q1.items}
    assert votes == {
        "it2": [("A", REL, "accept"), ("B", NOT, "reject")],
        # ann2 added it7 and rejected; ann1 approved the query and left it unticked: a "no".
        "it7": [("A", NOT, "accept"), ("B", REL, "reject")],
        "it9": [("A", REL, "accept"), ("B", NOT, "reject")],
    }
    # it3: yes from both; it8: only ann1 said no (ann2 rejected and left it alone: no vote).
    assert q1.counts == review.ItemCounts(judged=5, disputed=3, agreed=1, single=1)
    assert q1.counts.sentence() == (
        "5 judged items: 3 in dispute, 1 labelled alike by everyone who labelled it, "
        "1 labelled by one annotator only."
    )

    q2 = case_of(db, reviewer, "q2")
    assert [i.card.ext_id for i in q2.items] == ["it3", "it4"] and stored_differences(db, "q2") == {
        "it3",
        "it4",
    }
    assert q2.counts.sentence() == "2 judged items: 2 in dispute."
    assert [(v.annotator, v.verdict, v.reason) for v in q2.verdicts] == [
        ("A", "accept", None),
        ("B", "reject", "wrong"),
    ]


def test_every_disputed_item_is_decided_unless_the_query_is_rejected(db: Database, scenario) -> None:
    reviewer = scenario["reviewer"]
    q2 = case_of(db, reviewer, "q2")
    it3 = q2.items[0].card.item_id
    with pytest.raises(ValidationError, match=r"decide every item in dispute \(1 left: it4\), or reject"):
        adjudicate(db, reviewer, q2.query_id, items={it3: REL}, verdict="accept")
    assert case_of(db, reviewer, "q2").decision is None  # nothing was stored
    adjudicate(db, reviewer, q2.query_id, items={}, verdict="reject", reason="wrong")  # items moot
    assert case_of(db, reviewer, "q2").decision == "reject"


def test_changes_say_on_whose_labels_disputed_items_were_kept_or_removed(
    db: Database, scenario, tmp_path: Path
) -> None:
    reviewer = scenario["reviewer"]
    q1, q2 = case_of(db, reviewer, "q1"), case_of(db, reviewer, "q2")
    ids = {i.card.ext_id: i.card.item_id for i in q1.items + q2.items}
    adjudicate(
        db, reviewer, q1.query_id, items={ids["it2"]: REL, ids["it7"]: REL, ids["it9"]: NOT}, verdict="accept"
    )
    adjudicate(db, reviewer, q2.query_id, items={ids["it3"]: REL, ids["it4"]: NOT}, verdict="accept")

    export_dataset(db, "shop", tmp_path / "out", actor=scenario["admin"])
    rows = list(csv.DictReader((tmp_path / "out" / "changes.csv").open(encoding="utf-8")))
    got = {
        (r["query_id"], r["change"], r["item_id"]): (r["votes"], r["decided_by"], r["basis"]) for r in rows
    }
    ann1_yes_ann2_no = (
        "ann1: relevant (accepted the query); ann2: not relevant (rejected the query, not counted)"
    )
    assert got == {
        ("q1", "positive_kept", "it2"): (ann1_yes_ann2_no, "reviewer reviewer", "adjudication"),
        ("q1", "positive_added", "it7"): (
            "ann1: not relevant (accepted the query); ann2: relevant (rejected the query, not counted)",
            "reviewer reviewer",
            "adjudication",
        ),
        ("q2", "positive_kept", "it3"): (ann1_yes_ann2_no, "reviewer reviewer", "adjudication"),
        ("q2", "positive_removed", "it4"): (ann1_yes_ann2_no, "reviewer reviewer", "adjudication"),
        # Not disputed, decided by the annotators' consensus: on both their labels.
        ("q3", "positive_removed", "it4"): (
            "ann1: not relevant (accepted the query); ann2: not relevant (accepted the query)",
            "ann1, ann2",
            "consensus",
        ),
    }
    # it9 was never a positive and the reviewer said no: it is not in the split, so no row.
    assert not any(r["item_id"] == "it9" for r in rows)
