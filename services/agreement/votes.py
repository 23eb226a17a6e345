"""Who said what on each query: the one calculation of annotators' votes.

Review (which items are disputed), the agreement report (the units its statistics run over) and
the export manifest (pairwise observed agreement) all read votes through this module, so they
can never disagree about whether two annotators disagreed.

The rules:

- Only finished work counts: an annotator votes on a query once they have a verdict on it.
- A judgment is a vote whatever the verdict: an annotator who said "no" to a labelled positive
  and then rejected the query still said "no" to that positive.
- An annotator who approved the query (accept or rewrite) and did not tick an item another
  annotator added votes ``not_relevant`` on it: they were shown the same candidates and left it.
- Anything else is no vote: a rejecting annotator's unticked items, a positive left unlabelled.
- An item is *disputed* when its votes differ, when someone was unsure of it, or when someone
  added it as a positive and not everyone who finished the query marked it relevant (a reviewer
  must see a positive that would otherwise go in on one annotator's word).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import Label, Provenance, RejectReason, Verdict
from db.models import Judgment, Qrel, QueryVerdict

APPROVALS = (Verdict.ACCEPT, Verdict.REWRITE)

# Why a query is in dispute (review's filter).
KIND_VERDICT = "verdict"  # the verdicts differ
KIND_POSITIVE = "positive"  # a labelled positive got different votes
KIND_ADDED = "added"  # an added positive is not everyone's
KIND_FLAGGED = "flagged"  # someone was unsure, or rejected the query as ambiguous
KINDS = (KIND_VERDICT, KIND_POSITIVE, KIND_ADDED, KIND_FLAGGED)
CHUNK = 20_000  # query ids per IN (...) list: under every backend's parameter limit


@dataclass(frozen=True)
class Mark:
    """One annotator's judgment of one item, as stored."""

    label: str
    provenance: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueryVotes:
    """Every finished annotator's verdict and judgments on one query, and its labelled positives."""

    query_id: int
    verdicts: dict[int, str] = field(default_factory=dict)  # annotator id -> verdict
    reasons: dict[int, str | None] = field(default_factory=dict)  # annotator id -> reject reason
    marks: dict[int, dict[int, Mark]] = field(default_factory=dict)  # item -> annotator -> mark
    positives: set[int] = field(default_factory=set)

    @property
    def annotators(self) -> list[int]:
        """The annotators who finished the query, by id (stable pseudonyms follow this order)."""
        return sorted(self.verdicts)

    def votes(self, item_id: int) -> dict[int, str]:
        """Each annotator's vote on an item (see the module's rules); absent = no vote."""
        marks = self.marks.get(item_id, {})
        out: dict[int, str] = {}
        for uid, verdict in self.verdicts.items():
            mark = marks.get(uid)
            if mark is not None:
                out[uid] = mark.label
            elif verdict in APPROVALS and item_id not in self.positives and marks:
                out[uid] = Label.NOT_RELEVANT
        return out

    def judged_items(self) -> set[int]:
        """Items at least one finished annotator judged."""
        return {i for i, marks in self.marks.items() if marks.keys() & self.verdicts.keys()}

    def item_kinds(self, item_id: int) -> set[str]:
        """Why an item is disputed (``flagged``, ``positive`` or ``added``); empty when it is not."""
        votes = self.votes(item_id)
        kinds = {KIND_FLAGGED} if Label.UNSURE in votes.values() else set()
        differ = len(set(votes.values())) > 1
        if item_id not in self.positives and len(self.verdicts) >= 2:
            relevant = {u for u, label in votes.items() if label == Label.RELEVANT}
            differ = differ or bool(relevant and relevant != set(self.verdicts))
        if differ:
            kinds.add(KIND_POSITIVE if item_id in self.positives else KIND_ADDED)
        return kinds

    def disputed_items(self) -> set[int]:
        return {i for i in self.judged_items() if self.item_kinds(i)}

    def kinds(self) -> set[str]:
        """Why the query is in dispute; empty when it is not."""
        kinds: set[str] = set()
        if len(self.verdicts) >= 2 and len(set(self.verdicts.values())) > 1:
            kinds.add(KIND_VERDICT)
        if any(
            v == Verdict.REJECT and self.reasons.get(u) == RejectReason.AMBIGUOUS
            for u, v in self.verdicts.items()
        ):
            kinds.add(KIND_FLAGGED)
        for item_id in self.judged_items():
            kinds |= self.item_kinds(item_id)
        return kinds

    def pairs(self, item_id: int) -> Iterable[tuple[str, str]]:
        """Every pair of votes on an item (for pairwise observed agreement)."""
        votes = self.votes(item_id)
        return ((votes[a], votes[b]) for a, b in combinations(sorted(votes), 2))


def load_votes(s: Session, query_ids: Iterable[int]) -> dict[int, QueryVotes]:
    """The votes on each of ``query_ids`` (only queries someone finished appear)."""
    ids = list(query_ids)
    out: dict[int, QueryVotes] = {}
    for start in range(0, len(ids), CHUNK):
        out.update(_load(s, ids[start : start + CHUNK]))
    return out


def _load(s: Session, query_ids: list[int]) -> dict[int, QueryVotes]:
    out: dict[int, QueryVotes] = {}
    for v in s.execute(
        select(QueryVerdict.query_id, QueryVerdict.user_id, QueryVerdict.verdict, QueryVerdict.reason).where(
            QueryVerdict.query_id.in_(query_ids)
        )
    ):
        votes = out.setdefault(v.query_id, QueryVotes(v.query_id))
        votes.verdicts[v.user_id] = v.verdict
        votes.reasons[v.user_id] = v.reason
    finished = list(out)
    for j in s.execute(
        select(
            Judgment.query_id, Judgment.item_id, Judgment.user_id, Judgment.label, Judgment.provenance
        ).where(Judgment.query_id.in_(finished))
    ):
        out[j.query_id].marks.setdefault(j.item_id, {})[j.user_id] = Mark(j.label, j.provenance)
    for qid, iid in s.execute(
        select(Qrel.query_id, Qrel.item_id).where(Qrel.query_id.in_(finished), Qrel.score > 0)
    ):
        out[qid].positives.add(iid)
    return out


def from_rows(
    verdicts: dict[int, dict[int, str]],
    marks: dict[int, dict[int, dict[int, Mark]]],
    positives: dict[int, set[int]],
    reasons: dict[int, dict[int, str | None]] | None = None,
) -> dict[int, QueryVotes]:
    """Votes built from rows a caller loaded already (query -> annotator -> verdict, ...)."""
    out = {}
    for qid, by_user in verdicts.items():
        out[qid] = QueryVotes(
            qid,
            dict(by_user),
            dict((reasons or {}).get(qid, {})),
            {i: dict(m) for i, m in marks.get(qid, {}).items()},
            set(positives.get(qid, set())),
        )
    return out


def added_positives(votes: QueryVotes) -> Iterable[tuple[int, int, bool]]:
    """(item, annotator, confirmed) for each positive an annotator added (not an original one):
    confirmed when another annotator also marked it relevant."""
    for item_id, marks in votes.marks.items():
        for uid, mark in marks.items():
            if (
                uid in votes.verdicts
                and mark.provenance != Provenance.ORIGINAL
                and mark.label == Label.RELEVANT
            ):
                yield (
                    item_id,
                    uid,
                    any(
                        other != uid and other in votes.verdicts and m.label == Label.RELEVANT
                        for other, m in marks.items()
                    ),
                )


def positive_sets(votes: QueryVotes) -> dict[int, set[int]]:
    """Each finished annotator's final positives for the query (a rejection: none)."""
    return {
        uid: set()
        if verdict == Verdict.REJECT
        else {i for i, marks in votes.marks.items() if (m := marks.get(uid)) and m.label == Label.RELEVANT}
        for uid, verdict in votes.verdicts.items()
    }
