"""Exact top-k inner-product search by chunked matrix products.

The pool is walked in chunks, each chunk moved to the device (and converted) once; every query
chunk is scored against it and its running top-k merged with the chunk's. Memory stays at
``query_chunk × pool_chunk`` scores plus ``Q × k`` results, so pools of millions fit.

Ties are broken by the lower pool index, exactly: a chunk's ``topk`` takes ``k + 1`` values, and
where the ``k``-th and ``(k+1)``-th are equal (a tie straddles the cut, and ``torch.topk`` may
have kept either) the row is redone with a stable sort.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from models.embedder import resolve_device

__all__ = ["all_scores", "topk"]

ArrayLike = np.ndarray | torch.Tensor


def _as_tensor(array: ArrayLike) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        # A read-only memory map (a search index): torch warns that writing would be undefined;
        # topk only ever reads its inputs.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.from_numpy(array)
    return torch.from_numpy(array)


def _scores(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """``queries @ pool.T`` in float32 (fp16 inputs on CUDA are accumulated and returned in fp32)."""
    if queries.dtype == torch.float16 and queries.is_cuda:
        try:
            return torch.mm(queries, pool.T, out_dtype=torch.float32)
        except (TypeError, RuntimeError):  # torch without mm(out_dtype=): fp16 result
            return (queries @ pool.T).float()
    return queries @ pool.T


def _order_ties(values: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by value descending, then index ascending."""
    by_index = torch.argsort(indices, dim=1)
    values, indices = values.gather(1, by_index), indices.gather(1, by_index)
    by_value = torch.sort(values, dim=1, descending=True, stable=True).indices
    return values.gather(1, by_value), indices.gather(1, by_value)


def _chunk_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` of each row of ``scores`` with ties to the lower column; ``k`` ≤ columns."""
    columns = scores.shape[1]
    if k == columns:
        return _order_ties(scores, torch.arange(columns, device=scores.device).expand_as(scores))
    take = min(k + 1, columns)
    values, indices = torch.topk(scores, take, dim=1, largest=True, sorted=True)
    ambiguous = torch.nonzero(values[:, k - 1] == values[:, take - 1]).flatten() if take > k else None
    values, indices = values[:, :k], indices[:, :k]
    if ambiguous is not None and len(ambiguous):
        redo = torch.sort(scores[ambiguous], dim=1, descending=True, stable=True)
        values = values.clone()
        indices = indices.clone()
        values[ambiguous] = redo.values[:, :k]
        indices[ambiguous] = redo.indices[:, :k]
    return _order_ties(values, indices)


def topk(
    queries: ArrayLike,
    pool: ArrayLike,
    k: int,
    *,
    device: str | torch.device = "auto",
    query_chunk: int | None = None,
    pool_chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of ``queries @ pool.T`` for every query.

    Args:
        queries: ``[Q, d]`` (numpy or torch, any float dtype; float16 from the store is fine).
        pool: ``[N, d]``.
        k: results per query; clipped to ``N``.
        device: ``"auto"`` (CUDA, MPS, CPU) or a torch device string. Matrix products run in
            float16 on CUDA, float32 elsewhere; scores are returned in float32.
        query_chunk: queries scored at once (default 4096 on CUDA, 1024 on CPU).
        pool_chunk: pool rows moved to the device and scored at once (default 262144 on CUDA,
            16384 on CPU).

    Returns:
        ``(scores, indices)``: float32 and int64 ``[Q, min(k, N)]``, best first; equal scores
        are ordered by the lower pool index.

    Raises:
        ValueError: ``k`` < 1, the arrays are not 2-D, or their dimensions differ.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    q = _as_tensor(queries)
    p = _as_tensor(pool)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise ValueError(
            f"queries [Q, d] and pool [N, d] must share d; got {tuple(q.shape)} and {tuple(p.shape)}"
        )
    torch_device = resolve_device(device)
    n_queries, n_pool = q.shape[0], p.shape[0]
    k = min(k, n_pool)
    if k == 0 or n_queries == 0:
        return np.zeros((n_queries, k), dtype=np.float32), np.zeros((n_queries, k), dtype=np.int64)
    on_cuda = torch_device.type == "cuda"
    dtype = torch.float16 if on_cuda else torch.float32
    query_chunk = query_chunk or (4096 if on_cuda else 1024)
    pool_chunk = max(pool_chunk or (262144 if on_cuda else 16384), 1)

    q = q.to(torch_device, dtype=dtype)
    best_values = torch.empty((n_queries, 0), dtype=torch.float32, device=torch_device)
    best_indices = torch.empty((n_queries, 0), dtype=torch.int64, device=torch_device)
    with torch.inference_mode():
        for p_start in range(0, n_pool, pool_chunk):
            chunk = p[p_start : p_start + pool_chunk].to(torch_device, dtype=dtype, non_blocking=True)
            chunk_k = min(k, chunk.shape[0])
            values = torch.empty((n_queries, chunk_k), dtype=torch.float32, device=torch_device)
            indices = torch.empty((n_queries, chunk_k), dtype=torch.int64, device=torch_device)
            for q_start in range(0, n_queries, query_chunk):
                rows = slice(q_start, q_start + query_chunk)
                v, i = _chunk_topk(_scores(q[rows], chunk).float(), chunk_k)
                values[rows], indices[rows] = v, i + p_start
            if best_values.shape[1] == 0:
                best_values, best_indices = values, indices
                continue
            # Earlier chunks hold lower indices and both halves are ordered (value desc, index
            # asc), so a stable sort of the concatenation keeps ties in index order.
            merged_values = torch.cat([best_values, values], dim=1)
            merged_indices = torch.cat([best_indices, indices], dim=1)
            order = torch.sort(merged_values, dim=1, descending=True, stable=True).indices[:, :k]
            best_values = merged_values.gather(1, order)
            best_indices = merged_indices.gather(1, order)
    return best_values.cpu().numpy(), best_indices.cpu().numpy()


def all_scores(queries: ArrayLike, pool: ArrayLike, *, pool_chunk: int = 16384) -> np.ndarray:
    """Every score of ``queries @ pool.T`` in float32 on the CPU, the pool walked in chunks (a
    float16 memory map is converted a chunk at a time, never as a whole).

    Raises:
        ValueError: the arrays are not 2-D, or their dimensions differ.
    """
    q = _as_tensor(queries).to(torch.float32)
    p = _as_tensor(pool)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise ValueError(
            f"queries [Q, d] and pool [N, d] must share d; got {tuple(q.shape)} and {tuple(p.shape)}"
        )
    out = torch.empty((q.shape[0], p.shape[0]), dtype=torch.float32)
    with torch.inference_mode():
        for start in range(0, p.shape[0], max(pool_chunk, 1)):
            chunk = p[start : start + pool_chunk].to(torch.float32)
            out[:, start : start + chunk.shape[0]] = q @ chunk.T
    return out.numpy()
