"""The crowd as a model sees it: annotators' votes turned into observations, fitted, and read back.

Observations follow the vote rules of :mod:`services.agreement.votes` over the annotators whose
votes consensus counts for a query (those who approved it, or all who finished it when none did):

- an item's unit is (query, item): ``relevant`` is 1, ``not_relevant`` 0, ``unsure`` no vote; an
  approving annotator who left an item another annotator added votes 0 (they were shown the same
  candidates); a labelled positive someone left unlabelled is no vote;
- a query's unit is the query: ``accept`` and ``rewrite`` are 1, ``reject`` 0, over everyone who
  finished it.

Item votes are modelled in two contexts, fitted apart: the labelled positives, and the items that
could be added (from the candidates or a search). People behave differently in the two (a
rubber-stamper says yes to every labelled positive and adds nothing), and the classes are far
from balanced in the second, so one model would make "was a labelled positive" look like the
truth. An annotator's item competence is the vote-weighted mean over the two.

In the second context every candidate the workbench showed and nobody ticked is a unanimous
"not relevant" from the approving annotators, entered as one unit per query weighted by how many
there were (:class:`~services.cleaning.loading.ConsensusData` ``shown``): without them a model
only sees items someone ticked and cannot tell a careful annotator's rare tick from a random
clicker's many.

Gold queries are fitted too, with their gold answer as the known class of their units, so the
answers anchor every annotator's estimated competence; their own decision stays the gold answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.enums import Label, Provenance, Verdict
from services.cleaning.aggregation import Fit, fit
from services.cleaning.decisions import Competence
from services.cleaning.loading import ConsensusData

APPROVE = (Verdict.ACCEPT, Verdict.REWRITE)


def voters_of(data: ConsensusData, query_id: int) -> set[int]:
    """The annotators whose item votes count for a query: the approving ones, else all who finished."""
    verdicts = data.verdicts.get(query_id, {})
    approving = {u for u, v in verdicts.items() if v.verdict in APPROVE}
    return approving or set(verdicts)


POSITIVE = "labelled"  # the context of a vote on a labelled positive
ADDED = "added"  # on an item added from the candidates or a search


def unticked(data: ConsensusData) -> dict[tuple[int, None], float]:
    """Per query, the weight of its unit of shown candidates nobody ticked: (query, None) -> count."""
    out: dict[tuple[int, None], float] = {}
    for qid, shown in data.shown.items():
        ticked = sum(
            1
            for by_user in data.judgments.get(qid, {}).values()
            if any(mark[1] == Provenance.CANDIDATE for mark in by_user.values())
        )
        if shown > ticked and any(v.verdict in APPROVE for v in data.verdicts.get(qid, {}).values()):
            out[(qid, None)] = float(shown - ticked)
    return out


def item_observations(data: ConsensusData) -> list[tuple[tuple[int, int | None], tuple[int, str], int]]:
    """((query, item), (annotator, context), 1 relevant / 0 not) for every vote on an item; item None
    is the query's unit of shown candidates nobody ticked (see :func:`unticked`)."""
    out: list[tuple[tuple[int, int | None], tuple[int, str], int]] = []
    for q in data.queries:
        voters = voters_of(data, q.id)
        if not voters:
            continue
        approving = {u for u, v in data.verdicts.get(q.id, {}).items() if v.verdict in APPROVE}
        positives = {i for i, score in data.qrels.get(q.id, {}).items() if score > 0}
        for item_id, by_user in data.judgments.get(q.id, {}).items():
            if not voters & by_user.keys():
                continue
            context = POSITIVE if item_id in positives else ADDED
            for u in voters:
                mark = by_user.get(u)
                if mark is not None:
                    if mark[0] in (Label.RELEVANT, Label.NOT_RELEVANT):
                        out.append(((q.id, item_id), (u, context), int(mark[0] == Label.RELEVANT)))
                elif u in approving and item_id not in positives:
                    out.append(((q.id, item_id), (u, context), 0))
    return out


def query_observations(data: ConsensusData) -> list[tuple[int, int, int]]:
    """(query, annotator, 1 approved / 0 rejected) for every finished annotation."""
    return [(qid, u, int(v.verdict in APPROVE)) for qid, per in data.verdicts.items() for u, v in per.items()]


@dataclass(frozen=True)
class CrowdFit:
    """A model fitted to a dataset's item votes and query verdicts."""

    model: str
    items: tuple[Fit, ...]  # one per context
    queries: Fit

    def p_relevant(self, query_id: int, item_id: int) -> float | None:
        for f in self.items:
            p = f.posterior((query_id, item_id))
            if p is not None:
                return p
        return None

    def p_approved(self, query_id: int) -> float | None:
        return self.queries.posterior(query_id)

    def competence(self, data: ConsensusData) -> tuple[Competence, ...]:
        """Per annotator, by name: competence on item labels and on query verdicts."""
        items, n_items = _by_annotator(self.items)
        queries, n_queries = self.queries.competence_of(), self.queries.votes_of()
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


def _by_annotator(fits: tuple[Fit, ...]) -> tuple[dict[object, float], dict[object, int]]:
    """Competence per annotator over their contexts, weighted by their votes in each, and the votes."""
    weighted: dict[object, float] = {}
    votes: dict[object, int] = {}
    for f in fits:
        for (uid, _), c, n in zip(f.annotators, f.competence, f.votes, strict=True):  # type: ignore[misc]
            weighted[uid] = weighted.get(uid, 0.0) + float(c) * n
            votes[uid] = votes.get(uid, 0) + n
    return {u: weighted[u] / votes[u] for u in votes if votes[u]}, votes


def fit_crowd(data: ConsensusData, model: str) -> CrowdFit:
    """Fit ``model`` to the dataset's item votes and to its query verdicts (gold answers known)."""
    known_items = {
        (qid, item_id): int(label == Label.RELEVANT)
        for qid, answer in data.gold.items()
        for item_id, label in answer.labels.items()
    }
    known_queries = {qid: int(answer.verdict in APPROVE) for qid, answer in data.gold.items()}
    observations = item_observations(data)
    weights = unticked(data)
    # MACE's uniform prior over the truth misreads the labelled positives (mostly relevant) and the
    # added items (mostly not): it learns the prior here, as Dawid–Skene does.
    extra: dict[str, object] = {"learn_prior": True} if model == "mace" else {}
    return CrowdFit(
        model,
        tuple(
            fit(
                model,
                [o for o in observations if o[1][1] == context],
                known=known_items,
                weights=weights,
                **extra,
            )
            for context in (POSITIVE, ADDED)
        ),
        fit(model, query_observations(data), known=known_queries, **extra),
    )
