"""Reciprocal rank fusion of several rankers' runs, keeping each ranker's rank and score.

RRF (Cormack et al., 2009): ``score(d) = Σ_r 1 / (rrf_k + rank_r(d))`` over the rankers ``r``
that returned ``d``, ranks starting at 1.

Why not ``ranx.fuse(method="rrf")``: ranx 0.3.21 installs and imports beside numpy 2.3.5, but it
pulls in ~20 packages (numba, matplotlib, seaborn, ir_datasets, fastparquet, ...), its first
``fuse`` in a fresh environment spends ~30 s compiling numba kernels on this project's 2-core
machines (~6 s even with numba's cache warm), it returns only the fused scores, so the per-ranker
ranks and scores would have to be recomputed here anyway, and its order of tied scores is not
specified. RRF itself is the few lines below; it was checked against ``ranx.fuse`` on random runs
when this module was written: same scores (within 1e-17) and same order, except among exactly
tied scores, which ranx leaves in no defined order and this module orders by item id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

__all__ = ["RRF_K", "PooledCandidate", "RankerRank", "fuse_runs"]

#: The constant of the original paper, and ranx's default.
RRF_K = 60

#: ranker name -> query id -> [(item id, score)]
Runs = Mapping[str, Mapping[str, Sequence[tuple[str, float]]]]


class RankerRank(TypedDict):
    """Where one ranker put a candidate: 1-based ``rank`` and that ranker's own ``score``."""

    rank: int
    score: float


@dataclass(frozen=True)
class PooledCandidate:
    """One item of a query's fused candidate pool.

    Attributes:
        item_id: the item.
        rank: 1-based position in the fused list.
        score: the RRF score.
        rankers: for each ranker that returned the item, its rank and score there.
    """

    item_id: str
    rank: int
    score: float
    rankers: dict[str, RankerRank] = field(default_factory=dict)


def _ranked(results: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Order a ranker's results by score (descending, stable); keep an item's first appearance."""
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for item_id, score in sorted(results, key=lambda pair: -pair[1]):
        if item_id not in seen:
            seen.add(item_id)
            out.append((item_id, float(score)))
    return out


def fuse_runs(
    runs: Runs, k: int, *, rrf_k: int = RRF_K, weights: Mapping[str, float] | None = None
) -> dict[str, list[PooledCandidate]]:
    """Fuse rankers' runs with reciprocal rank fusion.

    Args:
        runs: ``{ranker: {query_id: [(item_id, score), ...]}}``. A ranker's ranks come from its
            scores (higher is better; equal scores keep the order given). A query missing from a
            ranker's run simply gets nothing from that ranker.
        k: candidates kept per query.
        rrf_k: the RRF constant.
        weights: a weight per ranker (weighted RRF); a ranker not named weighs 1.

    Returns:
        ``{query_id: [PooledCandidate, ...]}`` best first, at most ``k`` per query, for every
        query of any run. Equal RRF scores are ordered by item id.

    Raises:
        ValueError: ``k`` < 1 or ``rrf_k`` < 0.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if rrf_k < 0:
        raise ValueError(f"rrf_k must not be negative, got {rrf_k}")
    rankers = sorted(runs)  # a fixed summation order keeps the float sums identical across calls

    def weight(ranker: str) -> float:
        return 1.0 if weights is None else float(weights.get(ranker, 1.0))

    query_ids = sorted({query_id for run in runs.values() for query_id in run})
    fused: dict[str, list[PooledCandidate]] = {}
    for query_id in query_ids:
        by_item: dict[str, dict[str, RankerRank]] = {}
        for ranker in rankers:
            for rank, (item_id, score) in enumerate(_ranked(runs[ranker].get(query_id, ())), start=1):
                by_item.setdefault(item_id, {})[ranker] = RankerRank(rank=rank, score=score)
        scored = [
            (
                sum(weight(ranker) / (rrf_k + hit["rank"]) for ranker, hit in sorted(by_ranker.items())),
                item_id,
            )
            for item_id, by_ranker in by_item.items()
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        fused[query_id] = [
            PooledCandidate(item_id=item_id, rank=rank, score=score, rankers=by_item[item_id])
            for rank, (score, item_id) in enumerate(scored[:k], start=1)
        ]
    return fused
