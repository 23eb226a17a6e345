"""Gold queries: mixed into queues at the dataset's rate and indistinguishable there, scored per
kind with Wilson intervals, decided by their answer in the export, shown back in training mode."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Assignment, Item, Query
from db.session import Database
from services.annotation.queue import next_assignment
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import load_task
from services.cleaning.consensus import compute_consensus
from services.cleaning.decisions import BASIS_GOLD
from services.cleaning.policy import Policy
from services.core.auth import Actor
from services.core.errors import BundleError, PermissionDenied, ValidationError
from services.datasets.assignment import assign
from services.datasets.settings import update_settings
from services.gold.answers import list_gold, remove_gold, set_gold
from services.gold.dashboard import gold_dashboard
from services.gold.feedback import gold_feedback
from services.gold.scoring import ADDED, CONFIRMED, KEPT, REJECTED, WRONG_CAUGHT, gold_scores
from services.gold.sources import import_gold_file, promote_to_gold
from services.ingest.importer import import_bundle
from services.review.adjudication import adjudicate
from tests.bundles import add_pooled_candidates, make_bundle


def ids(db: Database) -> tuple[dict[str, int], dict[str, int]]:
    with db.read() as s:
        items = dict(s.execute(select(Item.ext_id, Item.id)).all())
        queries = dict(s.execute(select(Query.ext_id, Query.id)).all())
    return items, queries


@pytest.fixture
def shop(db: Database, users: dict[str, Actor], tmp_path: Path) -> tuple[dict[str, int], dict[str, int]]:
    import_bundle(db, make_bundle(tmp_path / "bundle", n_items=8, n_queries=40), "shop")
    add_pooled_candidates(db, "shop")
    return ids(db)


def work_all(db: Database, actor: Actor, decide) -> None:
    """Submit every query in the annotator's queue with ``decide(task) -> QueryWork``."""
    while (aid := next_assignment(db, actor, "shop")) is not None:
        submit(db, actor, aid, decide(load_task(db, actor, aid)))


def accept_all(task) -> QueryWork:
    labels = {p.item_id: LabelInput("relevant", "original") for p in task.positives}
    return QueryWork(labels, "accept", client_token=f"t-{task.assignment_id}")


def test_gold_is_mixed_in_at_the_rate_never_twice_and_not_topped_up(db, users, shop) -> None:
    _, queries = shop
    gold_ids = [queries[f"q{n}"] for n in range(1, 5)]
    for qid in gold_ids:
        set_gold(db, qid, verdict="accept", labels={})
    update_settings(db, "shop", {"gold_rate": 5})
    report = assign(db, "shop", overlap=1)
    with db.read() as s:
        rows = s.execute(select(Assignment.user_id, Assignment.query_id, Assignment.position)).all()
    per_user: dict[int, list[tuple[int, int]]] = {}
    for uid, qid, pos in rows:
        per_user.setdefault(uid, []).append((pos, qid))
    normal = {q for q in queries.values() if q not in gold_ids}
    assert {q for _, q, _ in rows if q in normal} == normal  # every normal query once (overlap 1)
    assert report.n_gold_new == sum(1 for _, q, _ in rows if q in gold_ids)
    for seq in per_user.values():
        seq.sort()
        golds = [q for _, q in seq if q in gold_ids]
        n_normal = len(seq) - len(golds)
        assert len(golds) == min(len(gold_ids), n_normal // 4)  # one in 5: after each 4 normal
        assert len(set(golds)) == len(golds)  # never twice
        for g, pos in enumerate(p for p, q in seq if q in gold_ids):
            assert g * 5 <= [p for p, _ in seq].index(pos) < (g + 1) * 5  # within its run of 5
    # Topping up again adds nothing, and a gold query is never given to reach the overlap.
    assert assign(db, "shop", overlap=1).n_new == 0
    update_settings(db, "shop", {"gold_rate": 1})
    with pytest.raises(ValidationError, match="gold_rate"):
        assign(db, "shop", overlap=1)


def test_a_gold_task_is_the_same_task_it_would_be_if_not_gold(db, users, shop, data_dir: Path) -> None:
    items, _ = shop
    update_settings(db, "shop", {"gold_rate": 0})
    assign(db, "shop", overlap=2)
    ann = users["ann1"]
    aid = next_assignment(db, ann, "shop")
    plain = load_task(db, ann, aid)
    set_gold(
        db, plain.query_id, verdict="reject", reason="ambiguous", labels={items["it1"]: "relevant"}, note="x"
    )
    update_settings(db, "shop", {"gold_training": True})
    gold = load_task(db, ann, aid)
    assert gold == plain  # same shape, same content: nothing says gold
    sent = json.dumps(dataclasses.asdict(gold), default=str).replace(str(data_dir), "")
    assert "gold" not in sent.lower()
    assert {f.name for f in dataclasses.fields(gold)} == {f.name for f in dataclasses.fields(plain)}
    # Training mode shows the answer only after a submit, and only to the annotator.
    assert gold_feedback(db, ann, aid) is None
    submit(db, ann, aid, accept_all(gold))
    feedback = gold_feedback(db, ann, aid)
    assert feedback is not None and feedback.expected_verdict == "reject" and not feedback.verdict_right
    with pytest.raises(PermissionDenied):
        gold_feedback(db, users["ann2"], aid)
    update_settings(db, "shop", {"gold_training": False})
    assert gold_feedback(db, ann, aid) is None


def test_scores_by_kind_with_wilson_and_a_warning(db, users, shop) -> None:
    items, queries = shop
    # q1's positives are it2, it3; gold: it2 relevant (confirm), it3 not (wrong positive), it5 a false negative.
    set_gold(
        db,
        queries["q1"],
        verdict="accept",
        labels={items["it2"]: "relevant", items["it3"]: "not_relevant", items["it5"]: "relevant"},
    )
    set_gold(db, queries["q2"], verdict="reject", reason="unanswerable", labels={})
    update_settings(db, "shop", {"gold_rate": 2, "gold_warn_below": 60})
    assign(db, "shop", overlap=1, annotators=["ann1", "ann2"])

    def careful(task) -> QueryWork:
        if task.query_id == queries["q2"]:
            return QueryWork({}, "reject", reason="unanswerable", client_token=f"c-{task.assignment_id}")
        labels = {
            p.item_id: LabelInput("not_relevant" if p.ext_id == "it3" else "relevant", "original")
            for p in task.positives
        }
        if task.query_id == queries["q1"]:
            c = next(c for c in task.candidates if c.card.ext_id == "it5")
            labels[c.card.item_id] = LabelInput("relevant", "candidate", position=c.position)
        return QueryWork(labels, "accept", client_token=f"c-{task.assignment_id}")

    work_all(db, users["ann1"], careful)
    work_all(db, users["ann2"], accept_all)  # a rubber-stamper
    scores = {sc.annotator: sc for sc in gold_scores(db, "shop")}
    good, stamp = scores["ann1"], scores["ann2"]
    assert good.gold_queries == stamp.gold_queries == 2
    assert (good.overall.count, good.overall.n) == (5, 5) and not good.warning
    assert {k: (sh.count, sh.n) for k, sh in stamp.kinds.items()} == {
        WRONG_CAUGHT: (0, 1),
        CONFIRMED: (1, 1),
        ADDED: (0, 1),
        REJECTED: (0, 1),
        KEPT: (1, 1),
    }
    assert stamp.overall.rate == pytest.approx(0.4) and stamp.warning
    assert stamp.overall.low == pytest.approx(0.1176, abs=1e-3) and stamp.overall.high == pytest.approx(
        0.7693, abs=1e-3
    )

    # The dashboard: gold accuracy beside each model's competence.
    dash = gold_dashboard(db, "shop")
    rows = {r["annotator"]: r for r in dash.rows}
    assert dash.n_gold == 2 and rows["ann2"]["warning"] and not rows["ann1"]["warning"]
    assert rows["ann1"]["gold accuracy"] == 1.0 and rows["ann1"]["gold queries"] == 2
    assert 0 <= rows["ann1"]["Dawid–Skene competence"] <= 1 and 0 <= rows["ann1"]["MACE competence"] <= 1

    # Consensus: the gold answer decides, whatever the votes; the votes are reported, not counted.
    result = {q.ext_id: q for q in compute_consensus(db, "shop", Policy(min_annotators=1)).queries}
    q1, q2 = result["q1"], result["q2"]
    assert q1.gold and q1.kept and {d.ext_id for d in q1.positives} == {"it2", "it5"}
    assert all(d.basis == BASIS_GOLD for d in q1.decisions)
    assert q2.gold and not q2.kept and "gold" in q2.detail
    assert remove_gold(db, queries["q2"]) and not remove_gold(db, queries["q2"])
    assert not compute_consensus(db, "shop", Policy(min_annotators=1)).queries[1].gold


def test_gold_file_and_promotion(db, users, shop, tmp_path: Path) -> None:
    items, queries = shop
    path = tmp_path / "gold.jsonl"
    path.write_text(
        json.dumps({"query_id": "q3", "verdict": "accept", "relevant": ["it4"], "not_relevant": ["it5"]})
        + "\n"
        + json.dumps({"query_id": "q4", "verdict": "reject", "reason": "ambiguous"})
        + "\n",
        encoding="utf-8",
    )
    report = import_gold_file(db, "shop", path)
    assert (report.n_gold, report.n_items) == (2, 2)
    assert [(r.query_ext_id, r.verdict, r.origin) for r in list_gold(db, "shop")] == [
        ("q3", "accept", "imported"),
        ("q4", "reject", "imported"),
    ]
    for line, message in (
        ({"query_id": "nope", "verdict": "accept"}, "unknown query"),
        ({"query_id": "q5", "verdict": "maybe"}, "verdict"),
        ({"query_id": "q5", "verdict": "accept", "relevant": ["it1"], "not_relevant": ["it1"]}, "both"),
        ({"query_id": "q5", "verdict": "accept", "relevant": ["zz"]}, "unknown items"),
    ):
        path.write_text(json.dumps({"query_id": "q6", "verdict": "accept"}) + "\n" + json.dumps(line) + "\n")
        with pytest.raises(BundleError, match=rf"gold.jsonl:2: .*{message}"):
            import_gold_file(db, "shop", path)
    assert len(list_gold(db, "shop")) == 2  # all or nothing

    with pytest.raises(ValidationError, match="no adjudication"):
        promote_to_gold(db, users["reviewer"], queries["q7"])
    adjudicate(db, users["reviewer"], queries["q7"], items={items["it8"]: "not_relevant"}, verdict="accept")
    answer = promote_to_gold(db, users["reviewer"], queries["q7"])
    assert answer.origin == "adjudication" and answer.verdict == "accept"
    assert answer.labels == {items["it8"]: "not_relevant", items["it1"]: "relevant"}  # q7: it8, it1
    with pytest.raises(PermissionDenied):
        promote_to_gold(db, users["ann1"], queries["q7"])
