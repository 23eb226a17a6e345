"""Exact chunked top-k against a brute-force numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.search import topk


def _reference(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries.astype(np.float64) @ pool.astype(np.float64).T
    k = min(k, len(pool))
    columns = np.arange(len(pool))
    order = np.array([np.lexsort((columns, -row))[:k] for row in scores])  # ties: lower index first
    return np.take_along_axis(scores, order, 1), order


@pytest.mark.parametrize(
    ("n_queries", "n_pool", "k", "query_chunk", "pool_chunk"),
    [
        (37, 500, 10, 8, 64),  # many chunks both ways, uneven tails
        (37, 500, 10, 1024, 100_000),  # one chunk
        (5, 40, 13, 2, 7),  # k larger than a pool chunk
        (6, 9, 50, 4, 4),  # k > N: clipped to N
        (3, 200, 1, 1, 33),
    ],
)
def test_topk_matches_bruteforce_random(
    n_queries: int, n_pool: int, k: int, query_chunk: int, pool_chunk: int
) -> None:
    rng = np.random.default_rng(n_queries * n_pool + k)
    queries = rng.standard_normal((n_queries, 24)).astype(np.float32)
    pool = rng.standard_normal((n_pool, 24)).astype(np.float32)
    scores, indices = topk(queries, pool, k, device="cpu", query_chunk=query_chunk, pool_chunk=pool_chunk)
    expected_scores, expected_indices = _reference(queries, pool, k)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    assert scores.shape == (n_queries, min(k, n_pool))
    assert np.array_equal(indices, expected_indices)
    assert np.allclose(scores, expected_scores, atol=1e-4)


@pytest.mark.parametrize(("query_chunk", "pool_chunk"), [(3, 5), (16, 11), (64, 1000)])
def test_topk_ties_lower_index_first(query_chunk: int, pool_chunk: int) -> None:
    # Entries in {-1, 0, 1}: dot products are small integers, exact in float32, with many ties.
    rng = np.random.default_rng(7)
    queries = rng.integers(-1, 2, (20, 6)).astype(np.float32)
    pool = rng.integers(-1, 2, (300, 6)).astype(np.float32)
    pool[150:] = pool[:150]  # every vector twice
    scores, indices = topk(queries, pool, 25, device="cpu", query_chunk=query_chunk, pool_chunk=pool_chunk)
    expected_scores, expected_indices = _reference(queries, pool, 25)
    assert np.array_equal(indices, expected_indices)
    assert np.array_equal(scores, expected_scores.astype(np.float32))


def test_topk_accepts_float16_tensors_and_rejects_bad_input() -> None:
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((4, 16)).astype(np.float16)
    pool = rng.standard_normal((50, 16)).astype(np.float16)
    _, indices = topk(torch.from_numpy(queries), torch.from_numpy(pool), 5, device="cpu")
    _, expected = _reference(queries.astype(np.float32), pool.astype(np.float32), 5)
    assert np.array_equal(indices, expected)
    empty_scores, empty_indices = topk(queries[:0], pool, 5, device="cpu")
    assert empty_scores.shape == (0, 5) and empty_indices.shape == (0, 5)
    with pytest.raises(ValueError, match="k must be"):
        topk(queries, pool, 0)
    with pytest.raises(ValueError, match="share d"):
        topk(queries, pool[:, :8], 3)
