"""Triage: the suspicion signals and modality shortcuts (pure), their storage, the queue order.

The demo-level checks (problems first beats shuffled on planted truth; the flags find the planted
single-modality queries) are in tests/test_triage_demo.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from db.enums import Shortcut
from db.models import Assignment, Candidate, Dataset, Item, Qrel, Query, RankerRun
from db.session import Database
from db.triage import QueryTriage
from services.annotation.queue import next_assignment
from services.core.errors import ValidationError
from services.datasets.assignment import assign
from services.datasets.settings import DatasetSettings, update_settings
from services.gold.answers import set_gold
from services.ingest.importer import import_bundle
from services.triage.compute import triage_dataset
from services.triage.order import pending_queue
from services.triage.signals import ranker_weights, shortcut, solves, suspicion
from tests.bundles import make_bundle

EVEN = {"clip_image": 1.0, "clip_text": 1.0, "bm25": 1.0, "hybrid": 1.0}


def ranked(*items: int) -> list[tuple[int, float]]:
    """A ranker's list: ``items`` best first, scores falling evenly."""
    return [(item, 10.0 - n) for n, item in enumerate(items)]


def every_ranker(*items: int) -> dict[str, list[tuple[int, float]]]:
    return {name: ranked(*items) for name in EVEN}


# ------------------------------------------------------------------------------ signals


def test_each_planted_problem_raises_its_signal_above_a_clean_query() -> None:
    clean = suspicion(every_ranker(1, 2, 3, 4, 5, 6, 7, 8), {1, 2}, EVEN)
    missing = suspicion(every_ranker(9, 1, 2, 3, 4, 5, 6, 7), {1, 2}, EVEN)  # 9 beats every positive
    wrong = suspicion(every_ranker(1, 3, 4, 5, 6, 7, 8, 2), {1, 2}, EVEN)  # 2 sits below six others
    nowhere = suspicion(every_ranker(3, 4, 5, 6, 7, 8, 9, 10), {1, 2}, EVEN)  # no ranker finds them
    assert missing.signals["false_negative"] > clean.signals["false_negative"] + 0.3
    assert wrong.signals["wrong_positive"] > clean.signals["wrong_positive"] + 0.3
    assert nowhere.signals["bad_query"] == 1.0 and clean.signals["bad_query"] == 0.0
    assert clean.score < min(missing.score, wrong.score, nowhere.score)
    for result in (clean, missing, wrong, nowhere):
        assert 0.0 <= result.score <= 1.0 and all(0.0 <= v <= 1.0 for v in result.signals.values())


def test_a_ranker_weighted_zero_does_not_count() -> None:
    # The image ranker puts an unlabelled item first; the others agree with the labels.
    runs = every_ranker(1, 2, 3, 4, 5)
    runs["clip_image"] = ranked(5, 4, 3, 2, 1)
    trusted = suspicion(runs, {1}, {**EVEN, "clip_image": 0.0})
    counted = suspicion(runs, {1}, EVEN)
    assert trusted.signals["false_negative"] < counted.signals["false_negative"]


def test_disagreement_between_the_image_and_the_text_rankers() -> None:
    agree = every_ranker(*range(1, 21))
    differ = {**agree, "clip_image": ranked(*range(21, 41))}
    assert suspicion(agree, {1}, EVEN).signals["disagreement"] == 0.0
    assert suspicion(differ, {1}, EVEN).signals["disagreement"] == 1.0


def test_a_query_without_positives_is_suspicious() -> None:
    found = suspicion(every_ranker(1, 2, 3), set(), EVEN)
    assert found.signals["bad_query"] == 1.0 and found.signals["false_negative"] == 1.0


def test_ranker_weights_follow_agreement_with_the_labels() -> None:
    weights = ranker_weights({"hybrid": [1.0, 0.5], "clip_text": [0.0, 0.0], "bm25": [0.5, 0.5]})
    assert weights == {"hybrid": 0.75, "clip_text": 0.01, "bm25": 0.5}
    assert ranker_weights({"a": [0.0], "b": []}) == {"a": 1.0, "b": 1.0}  # nobody finds anything


def test_solving_at_rank_r_counts_unlabelled_items_above_a_positive() -> None:
    hits = ranked(1, 9, 2, 3)
    assert not solves(hits, {1, 2}, 1)  # 9 is above 2
    assert solves(hits, {1, 2}, 2)  # one unlabelled item above is allowed at r = 2
    assert solves(ranked(2, 1, 9), {1, 2}, 1)  # the positives fill the top: order among them is free
    assert not solves(ranked(1, 9, 8), {1, 2}, 5)  # 2 is not in the list at all
    assert not solves(ranked(1), set(), 1)


def test_shortcut_names_the_modality_that_solves_alone() -> None:
    good, bad = ranked(1, 2, 9), ranked(9, 8, 1, 2)
    lists = {"clip_image": bad, "clip_text": bad, "bm25": bad, "hybrid": good}
    assert shortcut(lists, {1, 2}, 1) == Shortcut.NEITHER  # only the hybrid, which needs both
    assert shortcut({**lists, "clip_image": good}, {1, 2}, 1) == Shortcut.IMAGE
    assert shortcut({**lists, "bm25": good}, {1, 2}, 1) == Shortcut.TEXT
    assert shortcut({**lists, "clip_text": good}, {1, 2}, 1) == Shortcut.TEXT
    assert shortcut({**lists, "clip_image": good, "bm25": good}, {1, 2}, 1) == Shortcut.BOTH
    assert shortcut(lists, {1, 2}, 3) == Shortcut.BOTH  # two unlabelled items above are allowed at r = 3


# ------------------------------------------------------------------------------ settings


def test_queue_order_hints_and_modality_rank_are_settings() -> None:
    settings = DatasetSettings()
    assert (settings.queue_order, settings.show_hints, settings.modality_rank) == ("shuffled", False, 1)
    changed = settings.changed({"queue_order": "problems_first", "show_hints": True, "modality_rank": 3})
    assert DatasetSettings.from_stored(changed.as_stored()) == changed
    with pytest.raises(ValidationError, match="queue_order must be one of shuffled, problems_first"):
        settings.changed({"queue_order": "random"})
    with pytest.raises(ValidationError, match="modality_rank must be between 1 and 100"):
        settings.changed({"modality_rank": 0})
    assert DatasetSettings.parse("show_hints", "on") is True


# ------------------------------------------------------------------------------ stored triage and the queue


def rank_by_hand(db: Database, dataset: str, orders: dict[str, dict[str, list[str]]]) -> None:
    """Ranker runs written directly: ranker -> query ext id -> item ext ids, best first."""
    with db.write() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == dataset))
        items = dict(s.execute(select(Item.ext_id, Item.id).where(Item.dataset_id == ds.id)).all())
        queries = dict(s.execute(select(Query.ext_id, Query.id).where(Query.dataset_id == ds.id)).all())
        for name, per_query in orders.items():
            run = RankerRun(dataset_id=ds.id, name=name, kind="ranker")
            s.add(run)
            s.flush()
            for query, ranking in per_query.items():
                for rank, item in enumerate(ranking, start=1):
                    s.add(
                        Candidate(
                            run_id=run.id,
                            query_id=queries[query],
                            item_id=items[item],
                            rank=rank,
                            score=10.0 - rank,
                        )
                    )


@pytest.fixture
def shop(db: Database, tmp_path: Path, users) -> Database:
    """Six queries with two positives each (q1: it2, it3; q2: it3, it4; ...), ranked by hand:
    q1 is solved by the image ranker alone, q2 by BM25 alone, q3 has an unlabelled item on top of
    every list (suspicious), the rest are found by the hybrid only."""
    import_bundle(db, make_bundle(tmp_path / "b", n_items=8, n_queries=6), "shop")
    with db.read() as s:
        positives: dict[str, list[str]] = {}
        for q, i in s.execute(
            select(Query.ext_id, Item.ext_id)
            .join(Qrel, Qrel.query_id == Query.id)
            .join(Item, Item.id == Qrel.item_id)
        ):
            positives.setdefault(q, []).append(i)
    everything = [f"it{n}" for n in range(1, 9)]
    orders: dict[str, dict[str, list[str]]] = {
        name: {} for name in ("clip_image", "clip_text", "bm25", "hybrid")
    }
    for q, pos in positives.items():
        rest = [i for i in everything if i not in pos]
        solved, missed = pos + rest, rest[:2] + pos + rest[2:]
        orders["hybrid"][q] = solved if q != "q3" else missed
        orders["clip_image"][q] = solved if q == "q1" else missed
        orders["bm25"][q] = solved if q == "q2" else missed
        orders["clip_text"][q] = missed
    rank_by_hand(db, "shop", orders)
    return db


def test_triage_stores_a_row_per_query_and_replaces_it(shop: Database, users) -> None:
    report = triage_dataset(shop, "shop", actor=users["admin"])
    assert report.n_queries == 6 and report.shortcut_rank == 1
    assert report.shortcuts == {"text": 1, "image": 1, "both": 0, "neither": 4}
    with shop.read() as s:
        rows = {
            q: (t.suspicion, t.shortcut)
            for q, t in s.execute(select(Query.ext_id, QueryTriage).join(QueryTriage))
        }
    assert (
        rows["q1"][1] == Shortcut.IMAGE
        and rows["q2"][1] == Shortcut.TEXT
        and rows["q4"][1] == Shortcut.NEITHER
    )
    assert rows["q3"][0] == max(v for v, _ in rows.values())  # the rankers put unlabelled items first
    update_settings(shop, "shop", {"modality_rank": 3})
    again = triage_dataset(shop, "shop")
    assert again.shortcut_rank == 3 and again.n_queries == 6
    with shop.read() as s:
        assert s.query(QueryTriage).count() == 6


def test_triage_needs_runs(db: Database, tmp_path: Path, users) -> None:
    import_bundle(db, make_bundle(tmp_path / "b"), "bare")
    with pytest.raises(ValidationError, match="rank --dataset bare"):
        triage_dataset(db, "bare", actor=users["admin"])


def served(db: Database, actor, dataset: str) -> list[str]:
    """Query ext ids in the order the annotator's queue serves them."""
    with db.read() as s:
        ds_id = s.scalar(select(Dataset.id).where(Dataset.name == dataset))
        ext = dict(s.execute(select(Query.id, Query.ext_id)).all())
        return [ext[q] for q in pending_queue(s, actor.id, ds_id)]


def test_problems_first_serves_descending_suspicion_and_shuffled_restores_import_order(
    shop: Database, users
) -> None:
    me = users["ann1"]
    assign(shop, "shop", overlap=1, annotators=["ann1"])
    assert served(shop, me, "shop") == [f"q{n}" for n in range(1, 7)]
    triage_dataset(shop, "shop")  # shuffled: nothing moves
    assert served(shop, me, "shop") == [f"q{n}" for n in range(1, 7)]
    update_settings(shop, "shop", {"queue_order": "problems_first"})
    with shop.read() as s:
        suspicion_of = dict(s.execute(select(Query.ext_id, QueryTriage.suspicion).join(QueryTriage)).all())
    order = served(shop, me, "shop")
    assert order[0] == "q3" and [suspicion_of[q] for q in order] == sorted(
        suspicion_of.values(), reverse=True
    )
    first = next_assignment(shop, me, "shop")
    with shop.read() as s:
        assert s.scalar(select(Query.ext_id).join(Assignment).where(Assignment.id == first)) == "q3"
    update_settings(shop, "shop", {"queue_order": "shuffled"})
    assert served(shop, me, "shop") == [f"q{n}" for n in range(1, 7)]


def test_gold_queries_keep_their_slots_when_the_order_changes(shop: Database, users) -> None:
    triage_dataset(shop, "shop")
    with shop.read() as s:
        gold_query = s.scalar(select(Query.id).where(Query.ext_id == "q5"))
    set_gold(shop, gold_query, verdict="accept", labels={})
    update_settings(shop, "shop", {"gold_rate": 3})
    assign(shop, "shop", overlap=1, annotators=["ann1"])

    def slots() -> dict[int, int]:
        with shop.read() as s:
            return dict(
                s.execute(
                    select(Assignment.query_id, Assignment.position).where(
                        Assignment.user_id == users["ann1"].id
                    )
                ).all()
            )

    before = slots()
    assert gold_query in before
    update_settings(shop, "shop", {"queue_order": "problems_first"})
    after = slots()
    assert after[gold_query] == before[gold_query]
    assert sorted(after.values()) == sorted(before.values())  # the same slots, dealt anew
    assert after != before
