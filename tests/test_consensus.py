"""Consensus rules (query rule, positive rule, minimum annotators, adjudication, rewrites) and
stratified sampling (exact largest-remainder proportions, reproducible draws)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from db.models import Item, ItemAdjudication, Judgment, Query, QueryAdjudication, QueryRevision, QueryVerdict
from db.session import Database
from services.cleaning.consensus import compute_consensus
from services.cleaning.decisions import (
    BASIS_ADJUDICATION,
    BASIS_CONSENSUS,
    BASIS_ORIGINAL,
    DROP_NO_POSITIVE,
    DROP_REJECTED,
    DROP_TOO_FEW,
    QueryOutcome,
)
from services.cleaning.policy import Policy
from services.cleaning.sampling import allocate, sample_queries
from services.core.auth import Actor, add_user
from services.core.errors import PermissionDenied, ValidationError
from services.ingest.importer import import_bundle
from tests.bundles import make_bundle

# The database rules themselves run on every backend (see the tests without this mark); the rest
# exercise logic above the database and run on SQLite only, to keep the suite quick.
SQLITE_ONLY = pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Votes:
    """Writes annotators' verdicts and judgments and reviewers' adjudications straight to the db."""

    def __init__(self, db: Database, dataset_items: dict[str, int], queries: dict[str, int]) -> None:
        self.db, self.items, self.queries = db, dataset_items, queries
        self.clock = 0

    def _tick(self) -> datetime:
        self.clock += 1
        return T0 + timedelta(minutes=self.clock)

    def verdict(
        self,
        user: Actor,
        query: str,
        verdict: str,
        labels: dict[str, str] | None = None,
        *,
        rewrite: str | None = None,
        reason: str | None = None,
        added: dict[str, tuple[str, dict]] | None = None,
    ) -> None:
        """``labels``: item -> label for original positives; ``added``: item -> (provenance, detail),
        marked relevant."""
        now = self._tick()
        qid = self.queries[query]
        with self.db.write() as s:
            revision_id = None
            if rewrite is not None:
                revision = QueryRevision(
                    query_id=qid, text=rewrite, kind="rewrite", author_id=user.id, created_at=now
                )
                s.add(revision)
                s.flush()
                revision_id = revision.id
            s.add(
                QueryVerdict(
                    user_id=user.id,
                    query_id=qid,
                    verdict=verdict,
                    reason=reason,
                    revision_id=revision_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            for ext, label in (labels or {}).items():
                s.add(
                    Judgment(
                        user_id=user.id,
                        query_id=qid,
                        item_id=self.items[ext],
                        label=label,
                        provenance="original",
                        created_at=now,
                        updated_at=now,
                    )
                )
            for ext, (provenance, detail) in (added or {}).items():
                s.add(
                    Judgment(
                        user_id=user.id,
                        query_id=qid,
                        item_id=self.items[ext],
                        label="relevant",
                        provenance=provenance,
                        provenance_detail=detail,
                        created_at=now,
                        updated_at=now,
                    )
                )

    def adjudicate(
        self,
        reviewer: Actor,
        query: str,
        decision: str,
        item: str | None = None,
        *,
        revision_text: str | None = None,
        reason: str | None = None,
    ) -> datetime:
        now = self._tick()
        with self.db.write() as s:
            revision_id = None
            if revision_text is not None:
                revision = QueryRevision(
                    query_id=self.queries[query],
                    text=revision_text,
                    kind="adjudicated",
                    author_id=reviewer.id,
                    created_at=now,
                )
                s.add(revision)
                s.flush()
                revision_id = revision.id
            if item:
                s.add(
                    ItemAdjudication(
                        query_id=self.queries[query],
                        item_id=self.items[item],
                        reviewer_id=reviewer.id,
                        label=decision,
                        created_at=now,
                    )
                )
            else:
                s.add(
                    QueryAdjudication(
                        query_id=self.queries[query],
                        reviewer_id=reviewer.id,
                        verdict=decision,
                        reason=reason,
                        revision_id=revision_id,
                        created_at=now,
                    )
                )
        return now


@pytest.fixture
def shop(db: Database, tmp_path: Path, data_dir: Path, users: dict[str, Actor]) -> Votes:
    """10 items, 4 queries: q1 -> it2 it3, q2 -> it3 it4, q3 -> it4 it5, q4 -> it5 it6."""
    import_bundle(db, make_bundle(tmp_path / "b", n_items=10, n_queries=4), "shop")
    with db.read() as s:
        items = {ext: i for i, ext in s.execute(select(Item.id, Item.ext_id))}
        queries = {ext: i for i, ext in s.execute(select(Query.id, Query.ext_id))}
    return Votes(db, items, queries)


def outcome(result, query: str) -> QueryOutcome:
    return next(q for q in result.queries if q.ext_id == query)


def positives(result, query: str) -> list[str]:
    return [d.ext_id for d in outcome(result, query).positives]


BOTH_RELEVANT = {"it2": "relevant", "it3": "relevant"}


# --------------------------------------------------------------------------- the policy


def test_policy_defaults_parse_and_refusals() -> None:
    assert Policy() == Policy(2, "unanimous", "majority")
    assert Policy.parse("") == Policy()
    assert Policy.parse("min=3, query=Majority,positive=any") == Policy(3, "majority", "any")
    assert Policy.parse("min_annotators=1,positive_rule=unanimous") == Policy(1, "unanimous", "unanimous")
    assert str(Policy()) == "min=2,query=unanimous,positive=majority"
    with pytest.raises(ValidationError, match="choose unanimous or majority"):
        Policy(query_rule="most")
    with pytest.raises(ValidationError, match="choose one of majority, any, unanimous"):
        Policy.parse("positive=all")
    with pytest.raises(ValidationError, match="from 0 to 50"):
        Policy(min_annotators=-1)
    with pytest.raises(ValidationError, match="unknown policy key 'quorum'"):
        Policy.parse("quorum=2")
    with pytest.raises(ValidationError, match="min must be a whole number"):
        Policy.parse("min=two")
    with pytest.raises(ValidationError, match="not key=value"):
        Policy.parse("min")


@SQLITE_ONLY
def test_only_admins_and_reviewers_compute_consensus(db: Database, shop: Votes, users) -> None:
    with pytest.raises(PermissionDenied):
        compute_consensus(db, "shop", actor=users["ann1"])
    assert compute_consensus(db, "shop", actor=users["reviewer"]).dataset == "shop"


# --------------------------------------------------------------------------- queries


@SQLITE_ONLY
def test_too_few_annotators_are_dropped_and_min_zero_passes_unannotated_queries(
    db: Database, shop: Votes, users
) -> None:
    shop.verdict(users["ann1"], "q1", "accept", BOTH_RELEVANT)
    result = compute_consensus(db, "shop")
    q1 = outcome(result, "q1")
    assert not q1.kept and q1.reason == DROP_TOO_FEW
    assert q1.detail == "1 annotator finished it; the policy needs 2"
    assert {q.reason for q in result.dropped} == {DROP_TOO_FEW} and not result.kept

    one = compute_consensus(db, "shop", Policy(min_annotators=1))
    assert [q.ext_id for q in one.kept] == ["q1"] and positives(one, "q1") == ["it2", "it3"]

    everything = compute_consensus(db, "shop", Policy(min_annotators=0))
    assert [q.ext_id for q in everything.kept] == ["q1", "q2", "q3", "q4"]
    q4 = outcome(everything, "q4")
    assert positives(everything, "q4") == ["it5", "it6"]
    assert {d.basis for d in q4.positives} == {BASIS_ORIGINAL} and q4.text == "Find item 4"


@SQLITE_ONLY
def test_query_rules_unanimous_and_majority(db: Database, shop: Votes, users) -> None:
    ann3 = add_user(db, "ann3", "annotator", "password123")
    third = Actor(ann3.id, ann3.name, ann3.role)
    # q1: accept + reject; q2: accept, rewrite, reject (2 of 3 approve)
    shop.verdict(users["ann1"], "q1", "accept", BOTH_RELEVANT)
    shop.verdict(users["ann2"], "q1", "reject", reason="ambiguous")
    shop.verdict(users["ann1"], "q2", "accept", {"it3": "relevant", "it4": "relevant"})
    shop.verdict(users["ann2"], "q2", "reject", reason="wrong")
    shop.verdict(third, "q2", "rewrite", {"it3": "relevant", "it4": "relevant"}, rewrite="Find item two")

    unanimous = compute_consensus(db, "shop")
    assert outcome(unanimous, "q1").reason == DROP_REJECTED
    assert outcome(unanimous, "q1").detail == "1 of 2 annotators rejected it (ambiguous)"
    assert outcome(unanimous, "q2").reason == DROP_REJECTED

    majority = compute_consensus(db, "shop", Policy(query_rule="majority"))
    q1 = outcome(majority, "q1")
    assert not q1.kept and "no majority approved it" in q1.detail  # 1 of 2 is not a majority
    q2 = outcome(majority, "q2")
    assert q2.kept and q2.verdicts == {"accept": 1, "reject": 1, "rewrite": 1}
    # One accept and one rewrite: the rewrite is at least as common, so it is exported.
    assert q2.text == "Find item two" and q2.text_basis == BASIS_CONSENSUS and q2.rewritten
    # The rejecting annotator labelled nothing; only the two who approved vote on positives.
    assert positives(majority, "q2") == ["it3", "it4"]
    assert {d.voters for d in q2.positives} == {2}


@SQLITE_ONLY
def test_a_kept_query_without_positives_is_dropped(db: Database, shop: Votes, users) -> None:
    for user in (users["ann1"], users["ann2"]):
        shop.verdict(user, "q1", "accept", {"it2": "not_relevant", "it3": "unsure"})
    q1 = outcome(compute_consensus(db, "shop"), "q1")
    assert not q1.kept and q1.reason == DROP_NO_POSITIVE and not q1.positives


# --------------------------------------------------------------------------- positives


def test_positive_rules(db: Database, shop: Votes, users) -> None:
    pooled = {
        "run_id": 1,
        "rank": 7,
        "score": 0.1,
        "rankers": {"bm25": {"rank": 12}, "clip_image": {"rank": 3}},
    }
    shop.verdict(
        users["ann1"],
        "q1",
        "accept",
        {"it2": "relevant", "it3": "unsure"},
        added={"it7": ("candidate", pooled), "it8": ("search", {"text": "blue item"})},
    )
    shop.verdict(
        users["ann2"],
        "q1",
        "accept",
        {"it2": "not_relevant", "it3": "unsure"},
        added={"it8": ("candidate", {"rank": 2, "rankers": {}})},
    )
    # it2: 1 of 2 (a tie: the original label stands under majority); it3: unsure twice;
    # it7: added by one; it8: added by both.
    majority = compute_consensus(db, "shop")
    q1 = outcome(majority, "q1")
    assert positives(majority, "q1") == ["it2", "it8"]
    assert [d.ext_id for d in q1.removed] == ["it3"]
    assert [d.ext_id for d in q1.added] == ["it8"]
    it8 = q1.added[0]
    assert it8.basis == BASIS_CONSENSUS and (it8.votes_relevant, it8.voters) == (2, 2)
    assert [a.describe() for a in it8.additions] == [
        "ann1: search 'blue item'",
        "ann2: candidate (pooled rank 2)",
    ]

    anyone = compute_consensus(db, "shop", Policy(positive_rule="any"))
    q1 = outcome(anyone, "q1")
    assert positives(anyone, "q1") == ["it2", "it7", "it8"]
    it7 = next(d for d in q1.added if d.ext_id == "it7")
    assert it7.additions[0].describe() == "ann1: candidate (pooled rank 7; bm25 #12, clip_image #3)"
    assert it7.additions[0].detail == pooled

    unanimous = compute_consensus(db, "shop", Policy(positive_rule="unanimous"))
    assert positives(unanimous, "q1") == ["it8"]
    assert [d.ext_id for d in outcome(unanimous, "q1").removed] == ["it2", "it3"]


@SQLITE_ONLY
def test_majority_of_three(db: Database, shop: Votes, users) -> None:
    ann3 = add_user(db, "ann3", "annotator", "password123")
    third = Actor(ann3.id, ann3.name, ann3.role)
    shop.verdict(
        users["ann1"],
        "q1",
        "accept",
        {"it2": "relevant", "it3": "not_relevant"},
        added={"it9": ("search", {"text": "x"})},
    )
    shop.verdict(
        users["ann2"],
        "q1",
        "accept",
        {"it2": "not_relevant", "it3": "not_relevant"},
        added={"it9": ("search", {"text": "y"})},
    )
    shop.verdict(third, "q1", "accept", {"it2": "not_relevant", "it3": "relevant"})
    result = compute_consensus(db, "shop", Policy(min_annotators=3))
    assert positives(result, "q1") == ["it9"]  # 2 of 3 added it9; it2 and it3 had 1 of 3


# --------------------------------------------------------------------------- adjudication


def test_an_adjudication_always_wins_and_the_newest_counts(db: Database, shop: Votes, users) -> None:
    reviewer = users["reviewer"]
    for user in (users["ann1"], users["ann2"]):
        shop.verdict(user, "q1", "accept", BOTH_RELEVANT)
        shop.verdict(user, "q2", "reject", reason="unanswerable")
    shop.verdict(users["ann1"], "q3", "accept", {"it4": "relevant", "it5": "relevant"})
    # q1: the reviewer removes it3, adds it10; q2: rejected by all, accepted by the reviewer,
    # who first accepted it2 as a positive and then changed their mind (the newest wins).
    shop.adjudicate(reviewer, "q1", "not_relevant", "it3")
    shop.adjudicate(reviewer, "q1", "relevant", "it10")
    shop.adjudicate(reviewer, "q2", "accept")
    shop.adjudicate(reviewer, "q2", "relevant", "it3")
    shop.adjudicate(reviewer, "q2", "relevant", "it5")
    shop.adjudicate(reviewer, "q2", "not_relevant", "it5")
    # q3 has one annotator (too few) but the reviewer accepted it with an edited text.
    newest = shop.adjudicate(reviewer, "q3", "rewrite", revision_text="  Find item three  ")
    # q4 nobody annotated; the reviewer rejects it.
    shop.adjudicate(reviewer, "q4", "reject", reason="duplicate")

    result = compute_consensus(db, "shop")
    q1 = outcome(result, "q1")
    assert positives(result, "q1") == ["it10", "it2"]
    assert {d.ext_id: d.basis for d in q1.positives} == {
        "it10": BASIS_ADJUDICATION,
        "it2": BASIS_CONSENSUS,
    }
    assert [a.describe() for a in q1.added[0].additions] == ["reviewer: adjudication"]
    assert [(d.ext_id, d.basis) for d in q1.removed] == [("it3", BASIS_ADJUDICATION)]

    q2 = outcome(result, "q2")
    assert q2.kept and q2.detail == "kept by a reviewer"
    assert positives(result, "q2") == ["it3"]  # it4: both rejecters left it unlabelled

    q3 = outcome(result, "q3")
    assert q3.kept and q3.text == "Find item three" and q3.text_basis == BASIS_ADJUDICATION

    q4 = outcome(result, "q4")
    assert q4.reason == DROP_REJECTED and q4.detail == "a reviewer rejected it (duplicate)"

    assert result.newest_decision_at == newest + timedelta(minutes=1)
    assert result.agreement.adjudicated_queries == 3 and result.agreement.adjudicated_items == 4


# --------------------------------------------------------------------------- rewrites


@SQLITE_ONLY
def test_which_rewrite_is_exported(db: Database, shop: Votes, users) -> None:
    ann3 = add_user(db, "ann3", "annotator", "password123")
    third = Actor(ann3.id, ann3.name, ann3.role)
    one, two = users["ann1"], users["ann2"]
    # q1: two different rewrites: the earliest wins the tie.
    shop.verdict(one, "q1", "rewrite", BOTH_RELEVANT, rewrite="first text")
    shop.verdict(two, "q1", "rewrite", BOTH_RELEVANT, rewrite="second text")
    # q2: the later text was written by two of three: it wins.
    labels = {"it3": "relevant", "it4": "relevant"}
    shop.verdict(one, "q2", "rewrite", labels, rewrite="lonely text")
    shop.verdict(two, "q2", "rewrite", labels, rewrite="shared text")
    shop.verdict(third, "q2", "rewrite", labels, rewrite=" shared text ")
    # q3: two accepted as written, one rewrote: the original stays.
    labels = {"it4": "relevant", "it5": "relevant"}
    shop.verdict(one, "q3", "accept", labels)
    shop.verdict(two, "q3", "accept", labels)
    shop.verdict(third, "q3", "rewrite", labels, rewrite="unwanted text")
    # q4: rewritten by both, then the reviewer picks their own text.
    labels = {"it5": "relevant", "it6": "relevant"}
    shop.verdict(one, "q4", "rewrite", labels, rewrite="annotator text")
    shop.verdict(two, "q4", "rewrite", labels, rewrite="annotator text")
    shop.adjudicate(users["reviewer"], "q4", "rewrite", revision_text="reviewer text")

    result = compute_consensus(db, "shop")
    texts = {q.ext_id: (q.text, q.text_basis) for q in result.queries}
    assert texts == {
        "q1": ("first text", BASIS_CONSENSUS),
        "q2": ("shared text", BASIS_CONSENSUS),
        "q3": ("Find item 3", BASIS_ORIGINAL),
        "q4": ("reviewer text", BASIS_ADJUDICATION),
    }
    assert [q.rewritten for q in result.queries] == [True, True, False, True]
    assert result.counts()["rewritten"] == 3


@SQLITE_ONLY
def test_agreement_summary(db: Database, shop: Votes, users) -> None:
    shop.verdict(users["ann1"], "q1", "accept", BOTH_RELEVANT)
    shop.verdict(users["ann2"], "q1", "accept", {"it2": "relevant", "it3": "not_relevant"})
    shop.verdict(users["ann1"], "q2", "accept", {"it3": "relevant", "it4": "relevant"})
    shop.verdict(users["ann2"], "q2", "reject", reason="wrong")
    shop.verdict(users["ann1"], "q3", "accept", {"it4": "relevant", "it5": "relevant"})
    agreement = compute_consensus(db, "shop").agreement
    assert agreement.queries_by_annotators == {"0": 1, "1": 1, "2": 2}
    assert (agreement.verdict_pairs, agreement.verdict_agreement) == (2, 0.5)
    assert (agreement.label_pairs, agreement.label_agreement) == (2, 0.5)


# --------------------------------------------------------------------------- stratified sampling


def fake(ext: str, category: str | None, language: str | None = "en") -> QueryOutcome:
    return QueryOutcome(
        query_id=0,
        ext_id=ext,
        kept=True,
        reason=None,
        detail="kept",
        original_text="t",
        text="t",
        text_basis=BASIS_ORIGINAL,
        category=category,
        language=language,
        source=None,
        group_key=None,
        n_annotators=2,
        verdicts={},
        positives=(),
        removed=(),
        judged_non_relevant=(),
    )


def test_allocation_is_exact_largest_remainder() -> None:
    assert allocate({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    # 3.5, 2.1, 1.4 -> floors 3, 2, 1; the one left goes to the largest remainder (a)
    assert allocate({"a": 5, "b": 3, "c": 2}, 7) == {"a": 4, "b": 2, "c": 1}
    # equal remainders: the larger stratum first, then the earlier key
    assert allocate({"a": 1, "b": 2, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}
    assert allocate({"x": 1, "y": 1, "z": 1}, 2) == {"x": 1, "y": 1, "z": 0}
    assert allocate({"small": 1, "big": 3}, 2) == {"small": 0, "big": 2}  # 0.5 vs 1.5: big wins the tie
    assert allocate({}, 0) == {}


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12), st.data())
def test_allocation_properties(sizes: list[int], data) -> None:
    strata = {f"s{n:02d}": size for n, size in enumerate(sizes)}
    population = sum(sizes)
    total = data.draw(st.integers(min_value=0, max_value=population))
    quotas = allocate(strata, total)
    assert sum(quotas.values()) == total
    for key, size in strata.items():
        exact = total * size / population
        assert 0 <= quotas[key] <= size
        assert abs(quotas[key] - exact) < 1


def test_stratified_sample_has_exact_proportions_and_is_reproducible() -> None:
    queries = (
        [fake(f"a{n:03d}", "top", "en") for n in range(60)]
        + [fake(f"b{n:03d}", "top", "de") for n in range(20)]
        + [fake(f"c{n:03d}", "shoe", "en") for n in range(15)]
        + [fake(f"d{n:03d}", None, "en") for n in range(5)]
    )
    sample = sample_queries(queries, 20, ["category", "language"], seed=7)
    assert len(sample.selected) == 20 and list(sample.selected) == sorted(sample.selected)
    by_prefix = Counter(ext[0] for ext in sample.selected)
    assert by_prefix == {"a": 12, "b": 4, "c": 3, "d": 1}
    assert [(s.key, s.available, s.selected) for s in sample.strata] == [
        ((None, "en"), 5, 1),
        (("shoe", "en"), 15, 3),
        (("top", "de"), 20, 4),
        (("top", "en"), 60, 12),
    ]
    # The same inputs in another order give the same draw; another seed gives another draw.
    again = sample_queries(list(reversed(queries)), 20, ["category", "language"], seed=7)
    assert again.selected == sample.selected
    other = sample_queries(queries, 20, ["category", "language"], seed=8)
    assert other.selected != sample.selected and Counter(e[0] for e in other.selected) == by_prefix
    # Unstratified: a plain seeded draw; a size above the count keeps everything.
    assert len(sample_queries(queries, 9, [], seed=1).selected) == 9
    assert len(sample_queries(queries, 500, ["language"], seed=1).selected) == 100


def test_sampling_refusals() -> None:
    queries = [fake("q1", "top")]
    with pytest.raises(ValidationError, match="cannot stratify over colour"):
        sample_queries(queries, 1, ["colour"])
    with pytest.raises(ValidationError, match="at least 1"):
        sample_queries(queries, 0)
