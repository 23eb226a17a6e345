"""The crowd as a model sees it: annotators' votes turned into observations, fitted, and read back.

Observations follow the vote rules of :mod:`services.agreement.votes` over the annotators whose
votes consensus counts for a query (those who approved it, or all who finished it when none did):

- an item's unit is (query, item): ``relevant`` is 1, ``not_relevant`` 0, ``unsure`` no vote; an
  approving annotator who left an item another annotator added votes 0 (they were shown the same
  candidates); a labelled positive someone left unlabelled is no vote;
- a query's unit is the query: ``accept`` and ``rewrite`` are 1, ``reject`` 0, over everyone who
  finished it.

Gold queries are fitted too, with their gold answer as the known class of their units, so the
answers anchor every annotator's estimated competence; their own decision stays the gold answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.enums import Label, Verdict
from services.cleaning.aggregation import Fit, fit
from services.cleaning.decisions import Competence
from services.cleaning.loading import ConsensusData

APPROVE = (Verdict.ACCEPT, Verdict.REWRITE)


def voters_of(data: ConsensusData, query_id: int) -> set[int]:
    """The annotators whose item votes count for a query: the approving ones, else all who finished."""
    verdicts = data.verdicts.get(query_id, {})
    approving = {u for u, v in verdicts.items() if v.verdict in APPROVE}
    return approving or set(verdicts)


def item_observations(data: ConsensusData) -> list[tuple[tuple[int, int], int, int]]:
    """((query, item), annotator, 1 relevant / 0 not) for every vote on an item."""
    out = []
    for q in data.queries:
        voters = voters_of(data, q.id)
        if not voters:
            continue
        approving = {u for u, v in data.verdicts.get(q.id, {}).items() if v.verdict in APPROVE}
        positives = {i for i, score in data.qrels.get(q.id, {}).items() if score > 0}
        for item_id, by_user in data.judgments.get(q.id, {}).items():
            if not voters & by_user.keys():
                continue
            for u in voters:
                mark = by_user.get(u)
                if mark is not None:
                    if mark[0] in (Label.RELEVANT, Label.NOT_RELEVANT):
                        out.append(((q.id, item_id), u, int(mark[0] == Label.RELEVANT)))
                elif u in approving and item_id not in positives:
                    out.append(((q.id, item_id), u, 0))
    return out


def query_observations(data: ConsensusData) -> list[tuple[int, int, int]]:
    """(query, annotator, 1 approved / 0 rejected) for every finished annotation."""
    return [(qid, u, int(v.verdict in APPROVE)) for qid, per in data.verdicts.items() for u, v in per.items()]


@dataclass(frozen=True)
class CrowdFit:
    """A model fitted to a dataset's item votes and query verdicts."""

    model: str
    items: Fit
    queries: Fit

    def p_relevant(self, query_id: int, item_id: int) -> float | None:
        return self.items.posterior((query_id, item_id))

    def p_approved(self, query_id: int) -> float | None:
        return self.queries.posterior(query_id)

    def competence(self, data: ConsensusData) -> tuple[Competence, ...]:
        """Per annotator, by name: competence on item labels and on query verdicts."""
        items, queries = self.items.competence_of(), self.queries.competence_of()
        n_items, n_queries = self.items.votes_of(), self.queries.votes_of()
        names = {uid: data.user_names.get(uid, str(uid)) for uid in {*items, *queries}}  # type: ignore[call-overload]
        return tuple(
            Competence(
                annotator=names[uid],
                model=self.model,
                items=round(items[uid], 6) if uid in items else None,
                queries=round(queries[uid], 6) if uid in queries else None,
                item_votes=n_items.get(uid, 0),
                query_votes=n_queries.get(uid, 0),
            )
            for uid in sorted(names, key=lambda u: names[u])
        )


def fit_crowd(data: ConsensusData, model: str) -> CrowdFit:
    """Fit ``model`` to the dataset's item votes and to its query verdicts (gold answers known)."""
    known_items = {
        (qid, item_id): int(label == Label.RELEVANT)
        for qid, answer in data.gold.items()
        for item_id, label in answer.labels.items()
    }
    known_queries = {qid: int(answer.verdict in APPROVE) for qid, answer in data.gold.items()}
    return CrowdFit(
        model,
        fit(model, item_observations(data), known=known_items),
        fit(model, query_observations(data), known=known_queries),
    )
