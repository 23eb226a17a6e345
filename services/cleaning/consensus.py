"""Consensus: from annotators' verdicts and judgments and reviewers' adjudications to a cleaned split.

A :class:`~services.cleaning.policy.Policy` says how many annotators a query needs and how their
votes combine:

- Only completed work counts: an annotator counts for a query once they have a verdict on it.
- A reviewer's adjudication always wins, the newest one per (query, item); ``item_id`` null is a
  decision on the query itself.
- Query rule: ``accept`` and ``rewrite`` approve a query, ``reject`` rejects it. ``unanimous``
  keeps a query no annotator rejected; ``majority`` keeps one that more than half approved.
- A kept query is exported with its accepted rewrite when at least as many approving annotators
  rewrote it as accepted it as written: the reviewer's chosen revision first, else the text most
  of them wrote, ties to the earliest.
- Positive rule, over the annotators who approved the query (all of them when none did):
  ``majority`` (more than half say relevant; a tie keeps the original label), ``any`` (one is
  enough) or ``unanimous``. ``unsure`` and an unmarked item are not votes for relevant.
- A kept query left with no positive is dropped and listed.

The results are the dataclasses of :mod:`services.cleaning.decisions`;
:func:`services.cleaning.sampling.sample_queries` draws a stratified sample of the kept queries.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from sqlalchemy import select

from db.enums import Label, Provenance, Role, Verdict
from db.models import (
    Item,
    ItemAdjudication,
    Judgment,
    Qrel,
    Query,
    QueryAdjudication,
    QueryRevision,
    QueryVerdict,
    User,
)
from db.session import Database
from services.agreement.votes import APPROVALS, Mark, QueryVotes, from_rows
from services.cleaning.decisions import (
    BASIS_ADJUDICATION,
    BASIS_CONSENSUS,
    BASIS_ORIGINAL,
    DROP_NO_POSITIVE,
    DROP_REJECTED,
    DROP_TOO_FEW,
    Addition,
    AgreementSummary,
    ConsensusResult,
    ItemDecision,
    QueryOutcome,
    ballots_of,
)
from services.cleaning.policy import ANY, MAJORITY, UNANIMOUS, Policy
from services.core.auth import SYSTEM, Actor, allow
from services.core.lookups import dataset_or_404


@dataclass
class _Verdict:
    user_id: int
    verdict: str
    reason: str | None
    revision_id: int | None


@dataclass
class _QueryAdjudication:
    verdict: str
    reason: str | None
    revision_id: int | None


@dataclass
class _ItemAdjudication:
    label: str
    reviewer_id: int | None


@dataclass
class _Revision:
    id: int
    text: str
    created_at: datetime | None


@dataclass
class _Data:
    queries: list[Any]
    item_ext: dict[int, str]
    qrels: dict[int, dict[int, int]]
    verdicts: dict[int, dict[int, _Verdict]]
    judgments: dict[int, dict[int, dict[int, tuple[str, str, dict[str, Any]]]]]  # q -> item -> user -> j
    query_adjudications: dict[int, _QueryAdjudication]
    item_adjudications: dict[int, dict[int, _ItemAdjudication]]
    revisions: dict[int, _Revision]
    user_names: dict[int, str]
    newest: datetime | None


def _load(db: Database, dataset: str) -> tuple[int, _Data]:
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        in_ds = Query.dataset_id == ds.id
        queries = s.execute(
            select(
                Query.id,
                Query.ext_id,
                Query.text,
                Query.category,
                Query.language,
                Query.source,
                Query.group_key,
            ).where(in_ds)
        ).all()
        item_ext = dict(s.execute(select(Item.id, Item.ext_id).where(Item.dataset_id == ds.id)).all())
        qrels: dict[int, dict[int, int]] = defaultdict(dict)
        for qid, item_id, score in s.execute(
            select(Qrel.query_id, Qrel.item_id, Qrel.score)
            .join(Query, Query.id == Qrel.query_id)
            .where(in_ds)
        ):
            qrels[qid][item_id] = score

        newest: list[datetime] = []
        verdicts: dict[int, dict[int, _Verdict]] = defaultdict(dict)
        for v in s.execute(
            select(
                QueryVerdict.user_id,
                QueryVerdict.query_id,
                QueryVerdict.verdict,
                QueryVerdict.reason,
                QueryVerdict.revision_id,
                QueryVerdict.updated_at,
            )
            .join(Query, Query.id == QueryVerdict.query_id)
            .where(in_ds)
        ):
            verdicts[v.query_id][v.user_id] = _Verdict(v.user_id, v.verdict, v.reason, v.revision_id)
            if v.updated_at is not None:
                newest.append(v.updated_at)

        judgments: dict[int, dict[int, dict[int, tuple[str, str, dict[str, Any]]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for j in s.execute(
            select(
                Judgment.user_id,
                Judgment.query_id,
                Judgment.item_id,
                Judgment.label,
                Judgment.provenance,
                Judgment.provenance_detail,
                Judgment.updated_at,
            )
            .join(Query, Query.id == Judgment.query_id)
            .where(in_ds)
        ):
            judgments[j.query_id][j.item_id][j.user_id] = (
                j.label,
                j.provenance,
                dict(j.provenance_detail or {}),
            )
            if j.updated_at is not None:
                newest.append(j.updated_at)

        query_adj: dict[int, _QueryAdjudication] = {}
        item_adj: dict[int, dict[int, _ItemAdjudication]] = defaultdict(dict)
        # Oldest first, so the newest per query (and item) is the one left.
        for a in s.execute(
            select(QueryAdjudication)
            .join(Query, Query.id == QueryAdjudication.query_id)
            .where(in_ds)
            .order_by(QueryAdjudication.created_at, QueryAdjudication.id)
        ).scalars():
            query_adj[a.query_id] = _QueryAdjudication(a.verdict, a.reason, a.revision_id)
            newest.append(a.created_at)
        for a in s.execute(
            select(ItemAdjudication)
            .join(Query, Query.id == ItemAdjudication.query_id)
            .where(in_ds)
            .order_by(ItemAdjudication.created_at, ItemAdjudication.id)
        ).scalars():
            item_adj[a.query_id][a.item_id] = _ItemAdjudication(a.label, a.reviewer_id)
            newest.append(a.created_at)

        revision_ids = {v.revision_id for per in verdicts.values() for v in per.values() if v.revision_id}
        revision_ids |= {a.revision_id for a in query_adj.values() if a.revision_id}
        revisions = {
            r.id: _Revision(r.id, r.text, r.created_at)
            for r in s.execute(
                select(QueryRevision.id, QueryRevision.text, QueryRevision.created_at).where(
                    QueryRevision.id.in_(revision_ids)
                )
            )
        }
        user_names = dict(s.execute(select(User.id, User.name)).all())
        data = _Data(
            queries=list(queries),
            item_ext=item_ext,
            qrels=qrels,
            verdicts=verdicts,
            judgments=judgments,
            query_adjudications=query_adj,
            item_adjudications=item_adj,
            revisions=revisions,
            user_names=user_names,
            newest=max(newest) if newest else None,
        )
        return ds.id, data


def _passes(rule: str, relevant: int, voters: int, originally_positive: bool) -> bool:
    if rule == ANY:
        return relevant >= 1
    if rule == UNANIMOUS:
        return relevant == voters
    # majority: more than half; a tie keeps the original label
    return 2 * relevant > voters or (2 * relevant == voters and originally_positive)


def _chosen_rewrite(verdicts: Iterable[_Verdict], revisions: dict[int, _Revision]) -> _Revision | None:
    """The rewrite most annotators wrote (same text after trimming); ties go to the earliest."""
    by_text: dict[str, list[_Revision]] = defaultdict(list)
    for v in verdicts:
        revision = revisions.get(v.revision_id) if v.revision_id is not None else None
        if v.verdict == Verdict.REWRITE and revision is not None and revision.text.strip():
            by_text[revision.text.strip()].append(revision)
    if not by_text:
        return None
    floor = datetime.min.replace(tzinfo=UTC)

    def order(entry: tuple[str, list[_Revision]]) -> tuple[int, datetime, int]:
        first = min(entry[1], key=lambda r: (r.created_at or floor, r.id))
        return (-len(entry[1]), first.created_at or floor, first.id)

    _, revs = min(by_text.items(), key=order)
    return min(revs, key=lambda r: (r.created_at or floor, r.id))


def _query_outcome(q: Any, data: _Data, policy: Policy, cast: QueryVotes | None) -> QueryOutcome:
    verdicts = data.verdicts.get(q.id, {})
    n = len(verdicts)
    counts = Counter(v.verdict for v in verdicts.values())
    approvals = sum(counts[v] for v in APPROVALS)
    rejections = counts[Verdict.REJECT]
    adjudication = data.query_adjudications.get(q.id)
    base = {
        "query_id": q.id,
        "ext_id": q.ext_id,
        "original_text": q.text,
        "category": q.category,
        "language": q.language,
        "source": q.source,
        "group_key": q.group_key,
        "n_annotators": n,
        "verdicts": dict(sorted(counts.items())),
    }

    def dropped(reason: str, detail: str) -> QueryOutcome:
        return QueryOutcome(
            kept=False,
            reason=reason,
            detail=detail,
            text=q.text,
            text_basis=BASIS_ORIGINAL,
            positives=(),
            removed=(),
            judged_non_relevant=(),
            **base,
        )

    reasons = ", ".join(sorted({v.reason for v in verdicts.values() if v.reason}))
    reasons = f" ({reasons})" if reasons else ""
    if adjudication is not None:
        if adjudication.verdict == Verdict.REJECT:
            why = f" ({adjudication.reason})" if adjudication.reason else ""
            return dropped(DROP_REJECTED, f"a reviewer rejected it{why}")
    elif n < policy.min_annotators:
        return dropped(
            DROP_TOO_FEW,
            f"{n} annotator{'s' if n != 1 else ''} finished it; the policy needs {policy.min_annotators}",
        )
    elif policy.query_rule == UNANIMOUS and rejections:
        return dropped(DROP_REJECTED, f"{rejections} of {n} annotators rejected it{reasons}")
    elif policy.query_rule == MAJORITY and n and 2 * approvals <= n:
        return dropped(
            DROP_REJECTED, f"{rejections} of {n} annotators rejected it{reasons}; no majority approved it"
        )

    # The text.
    text, text_basis = q.text, BASIS_ORIGINAL
    revision = (
        data.revisions.get(adjudication.revision_id)
        if adjudication is not None and adjudication.revision_id is not None
        else None
    )
    if revision is not None:
        text, text_basis = revision.text.strip(), BASIS_ADJUDICATION
    elif adjudication is None or adjudication.verdict == Verdict.REWRITE:
        wanted = adjudication is not None or counts[Verdict.REWRITE] >= max(counts[Verdict.ACCEPT], 1)
        chosen = _chosen_rewrite(verdicts.values(), data.revisions) if wanted else None
        if chosen is not None:
            text = chosen.text.strip()
            text_basis = BASIS_ADJUDICATION if adjudication is not None else BASIS_CONSENSUS

    # The positives.
    approving = {u for u, v in verdicts.items() if v.verdict in APPROVALS}
    voters = approving or set(verdicts)
    original = data.qrels.get(q.id, {})
    judged = data.judgments.get(q.id, {})
    item_adj = data.item_adjudications.get(q.id, {})
    candidates = {i for i, score in original.items() if score > 0}
    candidates |= {i for i, by_user in judged.items() if voters & by_user.keys()}
    candidates |= set(item_adj)
    decisions: list[ItemDecision] = []
    for item_id in candidates:
        originally = original.get(item_id, 0) > 0
        votes = {u: judged.get(item_id, {}).get(u) for u in voters}
        relevant = sum(1 for j in votes.values() if j is not None and j[0] == Label.RELEVANT)
        additions = [
            Addition(data.user_names.get(u, str(u)), j[1], j[2])
            for u, j in sorted(votes.items())
            if j is not None and j[0] == Label.RELEVANT and j[1] != Provenance.ORIGINAL
        ]
        adj = item_adj.get(item_id)
        if adj is not None:
            positive, basis = adj.label == Label.RELEVANT, BASIS_ADJUDICATION
            name = data.user_names.get(adj.reviewer_id, "reviewer") if adj.reviewer_id else "reviewer"
            decided_by = (name,)
            if positive and not originally and not additions:
                additions = [Addition(name, BASIS_ADJUDICATION, {})]
        elif not voters:
            positive, basis, decided_by = originally, BASIS_ORIGINAL, ()
        else:
            positive = _passes(policy.positive_rule, relevant, len(voters), originally)
            basis, decided_by = BASIS_CONSENSUS, tuple(sorted(data.user_names.get(u, str(u)) for u in voters))
        additions.sort(key=lambda a: (a.by, a.provenance))
        decisions.append(
            ItemDecision(
                item_id=item_id,
                ext_id=data.item_ext[item_id],
                positive=positive,
                originally_positive=originally,
                basis=basis,
                votes_relevant=relevant,
                voters=len(voters),
                additions=tuple(additions) if positive and not originally else (),
                ballots=ballots_of(cast, item_id, data.user_names, voters),
                decided_by=decided_by,
            )
        )
    decisions.sort(key=lambda d: d.ext_id)
    positives = tuple(d for d in decisions if d.positive)
    if not positives:
        return dropped(
            DROP_NO_POSITIVE,
            "no positive is left: every labelled positive was judged not relevant and none was added",
        )
    positive_ids = {d.item_id for d in positives}
    zero = sorted(data.item_ext[i] for i, score in original.items() if score <= 0 and i not in positive_ids)
    return QueryOutcome(
        kept=True,
        reason=None,
        detail="kept by a reviewer" if adjudication is not None else "kept",
        text=text,
        text_basis=text_basis,
        positives=positives,
        removed=tuple(d for d in decisions if d.removed),
        judged_non_relevant=tuple(zero),
        **base,
    )


def _votes(data: _Data) -> dict[int, QueryVotes]:
    """Who voted what on each query, by :mod:`services.agreement.votes` (as review sees it)."""
    return from_rows(
        {q: {u: v.verdict for u, v in per.items()} for q, per in data.verdicts.items()},
        {
            q: {
                i: {u: Mark(label, provenance) for u, (label, provenance, _) in users.items()}
                for i, users in items.items()
            }
            for q, items in data.judgments.items()
        },
        {q: {i for i, score in items.items() if score > 0} for q, items in data.qrels.items()},
    )


def _agreement(data: _Data, votes: dict[int, QueryVotes]) -> AgreementSummary:
    """Pairwise observed agreement before consensus, over the votes :mod:`services.agreement.votes`
    counts (the same votes review and the agreement report see): approve vs reject per pair of
    annotators of a query, and relevant vs not per pair of votes on an item."""
    by_n = Counter(len(data.verdicts.get(q.id, {})) for q in data.queries)
    verdict_pairs = verdict_agree = 0
    label_pairs = label_agree = 0
    for query in votes.values():
        if len(query.verdicts) < 2:
            continue
        for a, b in combinations(query.annotators, 2):
            verdict_pairs += 1
            verdict_agree += (query.verdicts[a] in APPROVALS) == (query.verdicts[b] in APPROVALS)
        for item_id in query.judged_items():
            for x, y in query.pairs(item_id):
                label_pairs += 1
                label_agree += (x == Label.RELEVANT) == (y == Label.RELEVANT)
    return AgreementSummary(
        queries_by_annotators={str(k): by_n[k] for k in sorted(by_n)},
        verdict_pairs=verdict_pairs,
        verdict_agreement=round(verdict_agree / verdict_pairs, 4) if verdict_pairs else None,
        label_pairs=label_pairs,
        label_agreement=round(label_agree / label_pairs, 4) if label_pairs else None,
        adjudicated_queries=len(data.query_adjudications),
        adjudicated_items=sum(len(v) for v in data.item_adjudications.values()),
    )


@allow(Role.ADMIN, Role.REVIEWER)
def compute_consensus(
    db: Database, dataset: str, policy: Policy | None = None, *, actor: Actor = SYSTEM
) -> ConsensusResult:
    """Apply ``policy`` to every query of ``dataset`` (see the module doc for the rules).

    Raises:
        NotFoundError: no dataset of that name.
        PermissionDenied: ``actor`` is neither an admin nor a reviewer.
    """
    policy = policy or Policy()
    dataset_id, data = _load(db, dataset)
    votes = _votes(data)
    outcomes = sorted(
        (_query_outcome(q, data, policy, votes.get(q.id)) for q in data.queries), key=lambda o: o.ext_id
    )
    return ConsensusResult(dataset, dataset_id, policy, outcomes, _agreement(data, votes), data.newest)
