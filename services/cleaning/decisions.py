"""What consensus decides: each item's final label, each query's outcome, the dataset's result.

A **decision** is the final label of an item or the verdict on a query in the cleaned split; its
**basis** says where it came from: a gold answer, a reviewer's adjudication, the annotators'
consensus, or the original labels (nobody voted). A query is kept or dropped, and a dropped one says why (``DROP_*``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from db.enums import Provenance
from services.agreement.votes import QueryVotes
from services.cleaning.policy import DROP, Policy

# Why a query is not in the export.
DROP_TOO_FEW = "too_few_annotators"
DROP_REJECTED = "rejected"
DROP_NO_POSITIVE = "no_positive_left"
DROP_NOT_SAMPLED = "not_sampled"
DROP_SHORTCUT = "single_modality"  # one modality alone solves it, and the policy drops such queries

# A decision's basis: where it came from.
BASIS_ADJUDICATION = "adjudication"
BASIS_CONSENSUS = "consensus"
BASIS_ORIGINAL = "original"
BASIS_GOLD = "gold"  # a gold query: its decision is its gold answer, never the annotators' votes


@dataclass(frozen=True)
class Addition:
    """Who marked an item relevant that was not an original positive, and how they found it."""

    by: str  # user name
    provenance: str  # candidate | search | duplicate | adjudication
    detail: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One readable phrase, e.g. ``ann1: candidate (pooled rank 7; bm25 #12, clip_image #3)``."""
        if self.provenance == Provenance.SEARCH:
            return f"{self.by}: search {self.detail.get('text', '')!r}"
        if self.provenance == Provenance.DUPLICATE:
            return f"{self.by}: copy of {self.detail.get('of_ext') or self.detail.get('of')}"
        if self.provenance == Provenance.CANDIDATE:
            parts = []
            if self.detail.get("rank") is not None:
                parts.append(f"pooled rank {self.detail['rank']}")
            rankers = self.detail.get("rankers") or {}
            ranks = [
                f"{name} #{info['rank']}"
                for name, info in sorted(rankers.items())
                if isinstance(info, dict) and info.get("rank") is not None
            ]
            if ranks:
                parts.append(", ".join(ranks))
            return f"{self.by}: candidate" + (f" ({'; '.join(parts)})" if parts else "")
        return f"{self.by}: {self.provenance}"


@dataclass(frozen=True)
class Ballot:
    """One finished annotator's vote on an item (as :mod:`services.agreement.votes` counts votes)."""

    by: str  # user name
    label: str  # relevant | not_relevant | unsure
    verdict: str  # their verdict on the query
    counted: bool  # the positive rule counted it (it counts the annotators who approved the query)


def ballots_of(
    votes: QueryVotes | None, item_id: int, names: dict[int, str], counted: set[int]
) -> tuple[Ballot, ...]:
    """Every finished annotator's vote on an item, named; ``counted``: those the positive rule counts."""
    if votes is None:
        return ()
    return tuple(
        Ballot(names.get(u, str(u)), label, votes.verdicts[u], u in counted)
        for u, label in sorted(votes.votes(item_id).items())
    )


@dataclass(frozen=True)
class ItemDecision:
    """The final label of one item for one query, and its basis (where it came from)."""

    item_id: int
    ext_id: str
    positive: bool
    originally_positive: bool
    basis: str  # adjudication | consensus | original
    votes_relevant: int
    voters: int
    additions: tuple[Addition, ...] = ()
    p_relevant: float | None = None  # the model's posterior probability of relevance (model policies)
    ballots: tuple[Ballot, ...] = ()  # every finished annotator who voted on it, by name
    decided_by: tuple[str, ...] = ()  # whose word decided: the reviewer, or the counted annotators

    @property
    def disputed(self) -> bool:
        """Annotators' votes on it differ (whatever their verdicts)."""
        return len({b.label for b in self.ballots}) > 1

    @property
    def added(self) -> bool:
        return self.positive and not self.originally_positive

    @property
    def removed(self) -> bool:
        return self.originally_positive and not self.positive


@dataclass(frozen=True)
class QueryOutcome:
    """What happens to one query: kept (with its final text and positives) or dropped, and why."""

    query_id: int
    ext_id: str
    kept: bool
    reason: str | None  # a DROP_* constant when dropped
    detail: str  # a sentence saying why, for people
    original_text: str
    text: str  # the text to export
    text_basis: str  # original | consensus | adjudication
    category: str | None
    language: str | None
    source: str | None
    group_key: str | None
    n_annotators: int
    verdicts: dict[str, int]  # verdict -> count among completed annotations
    positives: tuple[ItemDecision, ...]  # sorted by item ext id
    removed: tuple[ItemDecision, ...]  # original positives that are no longer positive
    judged_non_relevant: tuple[str, ...]  # item ext ids imported with score 0, not positive now
    decisions: tuple[ItemDecision, ...] = ()  # every item decided (positive or not), by item ext id
    p_approved: float | None = None  # the model's probability that the query is good (model query rule)
    gold: bool = False  # decided by its gold answer

    @property
    def rewritten(self) -> bool:
        return self.text != self.original_text

    @property
    def added(self) -> tuple[ItemDecision, ...]:
        return tuple(d for d in self.positives if d.added)


@dataclass(frozen=True)
class AgreementSummary:
    """How much annotators agreed, before consensus: pairwise observed agreement."""

    queries_by_annotators: dict[str, int]  # "number of annotators" -> queries
    verdict_pairs: int
    verdict_agreement: float | None  # approve vs reject, over pairs of annotators of a query
    label_pairs: int
    label_agreement: float | None  # relevant vs not, over pairs who both judged an item
    adjudicated_queries: int
    adjudicated_items: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Competence:
    """An annotator's estimated competence under an aggregation model (see services.cleaning.aggregation)."""

    annotator: str
    model: str  # dawid_skene | mace
    items: float | None  # from their item labels (None: they labelled nothing)
    queries: float | None  # from their query verdicts
    item_votes: int
    query_votes: int


@dataclass(frozen=True)
class ConsensusResult:
    dataset: str
    dataset_id: int
    policy: Policy
    queries: list[QueryOutcome]  # sorted by query ext id
    agreement: AgreementSummary
    newest_decision_at: datetime | None  # newest verdict, judgment or adjudication (UTC)
    competence: tuple[Competence, ...] = ()  # per annotator, when the policy uses a model

    @property
    def kept(self) -> list[QueryOutcome]:
        return [q for q in self.queries if q.kept]

    @property
    def dropped(self) -> list[QueryOutcome]:
        return [q for q in self.queries if not q.kept]

    def counts(self) -> dict[str, Any]:
        kept = self.kept
        reasons = Counter(q.reason for q in self.dropped)
        return {
            "queries": len(self.queries),
            "kept": len(kept),
            "dropped": {
                r: reasons.get(r, 0)
                for r in (DROP_TOO_FEW, DROP_REJECTED, DROP_NO_POSITIVE)
                + ((DROP_SHORTCUT,) if self.policy.shortcuts == DROP else ())
            },
            "rewritten": sum(q.rewritten for q in kept),
            "positives": sum(len(q.positives) for q in kept),
            "positives_added": sum(len(q.added) for q in kept),
            "positives_removed": sum(len(q.removed) for q in kept),
        }
