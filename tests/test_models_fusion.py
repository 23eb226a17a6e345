"""Reciprocal rank fusion with per-ranker provenance."""

from __future__ import annotations

import pytest

from models.fusion import RRF_K, PooledCandidate, fuse_runs


def test_rrf_equals_hand_computation_and_keeps_provenance() -> None:
    runs = {
        "clip": {"q1": [("a", 0.9), ("b", 0.8), ("c", 0.1)]},
        "bm25": {"q1": [("c", 12.0), ("a", 3.0), ("d", 1.0)], "q2": [("x", 2.0)]},
    }
    fused = fuse_runs(runs, k=10)
    # a: clip 1, bm25 2; c: clip 3, bm25 1; b: clip 2; d: bm25 3.
    expected = {
        "a": 1 / (RRF_K + 1) + 1 / (RRF_K + 2),
        "c": 1 / (RRF_K + 3) + 1 / (RRF_K + 1),
        "b": 1 / (RRF_K + 2),
        "d": 1 / (RRF_K + 3),
    }
    assert [c.item_id for c in fused["q1"]] == ["a", "c", "b", "d"]
    assert [c.rank for c in fused["q1"]] == [1, 2, 3, 4]
    for candidate in fused["q1"]:
        assert candidate.score == pytest.approx(expected[candidate.item_id], abs=1e-15)
    assert fused["q1"][1].rankers == {"bm25": {"rank": 1, "score": 12.0}, "clip": {"rank": 3, "score": 0.1}}
    assert fused["q1"][2].rankers == {"clip": {"rank": 2, "score": 0.8}}
    assert fused["q2"] == [PooledCandidate("x", 1, 1 / (RRF_K + 1), {"bm25": {"rank": 1, "score": 2.0}})]


def test_ranks_come_from_scores_and_ties_are_deterministic() -> None:
    runs = {
        "r1": {"q": [("z", 0.1), ("y", 0.5), ("y", 0.2)]},  # unsorted, a repeated item
        "r2": {"q": [("y", 1.0), ("z", 0.9)]},
        "r3": {"q": [("m", 1.0)]},
        "r4": {"q": [("k", 1.0)]},
    }
    fused = fuse_runs(runs, k=3)["q"]
    assert fused[0].rankers["r1"] == {"rank": 1, "score": 0.5}
    assert [c.item_id for c in fused] == ["y", "z", "k"]  # k and m tie: item id decides
    assert fuse_runs(runs, k=3) == fuse_runs(dict(reversed(runs.items())), k=3)


def test_bad_k() -> None:
    with pytest.raises(ValueError, match="k must be"):
        fuse_runs({}, k=0)
    assert fuse_runs({}, k=5) == {}
