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
- Model rules (``dawid_skene``, ``mace``; :mod:`services.cleaning.crowd`) weigh each annotator by
  an estimated competence: a query is kept when the model's probability that it is good is at
  least one half; an item is positive when its probability of relevance is over one half (exactly
  one half keeps the original label; an item nobody voted on keeps it too). Each decision records
  its probability.
- A gold query's decision is its gold answer (:mod:`services.gold.answers`), whatever the
  annotators said and whatever the policy: a gold ``reject`` drops it; otherwise the items the
  answer names take its labels and the others their original ones.
- A kept query left with no positive is dropped and listed.
- With ``shortcuts=drop``, a kept query that one modality alone solves (its stored modality
  shortcut, :mod:`services.triage`) is dropped too (``single_modality``).

The results are the dataclasses of :mod:`services.cleaning.decisions`;
:func:`services.cleaning.sampling.sample_queries` draws a stratified sample of the kept queries.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from db.enums import Label, Provenance, Role, Verdict
from db.session import Database
from services.agreement.votes import APPROVALS, Mark, QueryVotes, from_rows
from services.cleaning.crowd import CrowdFit, fit_crowd, voters_of
from services.cleaning.decisions import (
    BASIS_ADJUDICATION,
    BASIS_CONSENSUS,
    BASIS_GOLD,
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
from services.cleaning.loading import ConsensusData, RevisionRow, VerdictRow, load_data
from services.cleaning.policy import ANY, DROP, MAJORITY, MODEL_RULES, UNANIMOUS, Policy
from services.core.auth import SYSTEM, Actor, allow
from services.triage.policy import drop_single_modality

_APPROVALS = (Verdict.ACCEPT, Verdict.REWRITE)


def _passes(rule: str, relevant: int, voters: int, originally_positive: bool) -> bool:
    if rule == ANY:
        return relevant >= 1
    if rule == UNANIMOUS:
        return relevant == voters
    # majority: more than half; a tie keeps the original label
    return 2 * relevant > voters or (2 * relevant == voters and originally_positive)


def _chosen_rewrite(verdicts: Iterable[VerdictRow], revisions: dict[int, RevisionRow]) -> RevisionRow | None:
    """The rewrite most annotators wrote (same text after trimming); ties go to the earliest."""
    by_text: dict[str, list[RevisionRow]] = defaultdict(list)
    for v in verdicts:
        revision = revisions.get(v.revision_id) if v.revision_id is not None else None
        if v.verdict == Verdict.REWRITE and revision is not None and revision.text.strip():
            by_text[revision.text.strip()].append(revision)
    if not by_text:
        return None
    floor = datetime.min.replace(tzinfo=UTC)

    def order(entry: tuple[str, list[RevisionRow]]) -> tuple[int, datetime, int]:
        first = min(entry[1], key=lambda r: (r.created_at or floor, r.id))
        return (-len(entry[1]), first.created_at or floor, first.id)

    _, revs = min(by_text.items(), key=order)
    return min(revs, key=lambda r: (r.created_at or floor, r.id))


def _by_model(p: float | None, originally: bool) -> tuple[bool, str]:
    """A model's decision on an item: over one half is positive; no vote or a tie keeps the original."""
    if p is None:
        return originally, BASIS_ORIGINAL
    if p == 0.5:
        return originally, BASIS_CONSENSUS
    return p > 0.5, BASIS_CONSENSUS


def _gold_outcome(q: Any, data: ConsensusData, base: dict[str, Any]) -> QueryOutcome:
    """A gold query decided by its gold answer (annotators' votes are reported, never counted)."""
    answer = data.gold[q.id]
    original = data.qrels.get(q.id, {})
    common = {**base, "text": q.text, "text_basis": BASIS_GOLD, "gold": True}
    if answer.verdict == Verdict.REJECT:
        why = f" ({answer.reason})" if answer.reason else ""
        return QueryOutcome(
            kept=False,
            reason=DROP_REJECTED,
            detail=f"its gold answer rejects it{why}",
            positives=(),
            removed=(),
            judged_non_relevant=(),
            **common,
        )
    voters = voters_of(data, q.id)
    judged = data.judgments.get(q.id, {})
    decisions = []
    for item_id in sorted({i for i, score in original.items() if score > 0} | set(answer.labels)):
        originally = original.get(item_id, 0) > 0
        positive = (
            answer.labels.get(item_id, Label.RELEVANT if originally else Label.NOT_RELEVANT) == Label.RELEVANT
        )
        relevant = sum(1 for u in voters if (judged.get(item_id, {}).get(u) or ("",))[0] == Label.RELEVANT)
        decisions.append(
            ItemDecision(
                item_id=item_id,
                ext_id=data.item_ext[item_id],
                positive=positive,
                originally_positive=originally,
                basis=BASIS_GOLD,
                votes_relevant=relevant,
                voters=len(voters),
                additions=(Addition("gold", BASIS_GOLD, {}),) if positive and not originally else (),
                p_relevant=1.0 if positive else 0.0,
            )
        )
    decisions.sort(key=lambda d: d.ext_id)
    positives = tuple(d for d in decisions if d.positive)
    if not positives:
        return QueryOutcome(
            kept=False,
            reason=DROP_NO_POSITIVE,
            detail="its gold answer leaves no positive",
            positives=(),
            removed=(),
            judged_non_relevant=(),
            decisions=tuple(decisions),
            **common,
        )
    positive_ids = {d.item_id for d in positives}
    zero = sorted(data.item_ext[i] for i, score in original.items() if score <= 0 and i not in positive_ids)
    return QueryOutcome(
        kept=True,
        reason=None,
        detail="kept by its gold answer",
        positives=positives,
        removed=tuple(d for d in decisions if d.removed),
        judged_non_relevant=tuple(zero),
        decisions=tuple(decisions),
        **common,
    )


def _query_outcome(
    q: Any, data: ConsensusData, policy: Policy, crowd: CrowdFit | None, cast: QueryVotes | None
) -> QueryOutcome:
    verdicts = data.verdicts.get(q.id, {})
    n = len(verdicts)
    counts = Counter(v.verdict for v in verdicts.values())
    approvals = sum(counts[v] for v in _APPROVALS)
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
    if q.id in data.gold:
        return _gold_outcome(q, data, base)
    p_approved = crowd.p_approved(q.id) if crowd is not None and policy.query_rule in MODEL_RULES else None
    base["p_approved"] = round(p_approved, 6) if p_approved is not None else None

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
    elif p_approved is not None and p_approved < 0.5:
        return dropped(
            DROP_REJECTED,
            f"{rejections} of {n} annotators rejected it{reasons}; the {policy.query_rule} model puts "
            f"the chance that it is a good query at {p_approved:.2f}",
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
    approving = {u for u, v in verdicts.items() if v.verdict in _APPROVALS}
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
        p = (
            crowd.p_relevant(q.id, item_id)
            if crowd is not None and policy.positive_rule in MODEL_RULES
            else None
        )
        counted = tuple(sorted(data.user_names.get(u, str(u)) for u in voters))
        if adj is not None:
            positive, basis = adj.label == Label.RELEVANT, BASIS_ADJUDICATION
            name = data.user_names.get(adj.reviewer_id, "reviewer") if adj.reviewer_id else "reviewer"
            decided_by: tuple[str, ...] = (name,)
            if positive and not originally and not additions:
                additions = [Addition(name, BASIS_ADJUDICATION, {})]
        elif not voters:
            positive, basis, decided_by = originally, BASIS_ORIGINAL, ()
        elif policy.positive_rule in MODEL_RULES:
            (positive, basis), decided_by = _by_model(p, originally), counted
        else:
            positive = _passes(policy.positive_rule, relevant, len(voters), originally)
            basis, decided_by = BASIS_CONSENSUS, counted
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
                p_relevant=round(p, 6) if p is not None else None,
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
        decisions=tuple(decisions),
        **base,
    )


def _votes(data: ConsensusData) -> dict[int, QueryVotes]:
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


def _agreement(data: ConsensusData, votes: dict[int, QueryVotes]) -> AgreementSummary:
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
    dataset_id, data = load_data(db, dataset, actor=actor)
    crowd = fit_crowd(data, policy.models[0]) if policy.models else None
    if crowd is not None and len(policy.models) == 2:  # one model for items, another for queries
        other = fit_crowd(data, policy.query_rule)
        crowd = CrowdFit(policy.positive_rule, crowd.items, other.queries)
    votes = _votes(data)
    outcomes = sorted(
        (_query_outcome(q, data, policy, crowd, votes.get(q.id)) for q in data.queries),
        key=lambda o: o.ext_id,
    )
    if policy.shortcuts == DROP:
        outcomes = drop_single_modality(db, dataset_id, outcomes, actor=actor)
    competence = crowd.competence(data) if crowd is not None else ()
    return ConsensusResult(
        dataset, dataset_id, policy, outcomes, _agreement(data, votes), data.newest, competence
    )
