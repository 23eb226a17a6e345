"""Finding copies among n images without comparing every pair: the numeric side, pure numpy.

1. :func:`hash_pairs`: candidate pairs whose perceptual hashes differ in at most ``t`` bits, by
   multi-index hashing (Norouzi et al.): the 64-bit hash is cut into ``t // 2 + 1`` bands; two
   hashes within ``t`` bits differ in at most one bit on at least one band (pigeonhole), so each
   image looks up its own value of each band and the values one bit away in a sorted index. The
   work grows with the number of close pairs, not with n².
2. :func:`cosines`: CLIP image cosine of each candidate pair (vectors from the embedding store).
3. :func:`layout_distances`: mean colour difference of the 16×16 layouts; re-encoded and
   resized copies differ by a couple of grey levels, different items by many more.
4. :func:`crop_distance`: when one image is a little smaller than the other (:func:`crop_cuts`),
   the smallest layout difference over the ways the bigger one can have been cropped to it, so
   a slightly cropped copy is compared with the part of the original it shows.
5. :func:`components`: the groups the confirmed pairs connect, each with a spanning tree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

HASH_BITS = 64
#: Expanded (image, partner) rows per step of :func:`hash_pairs`: bounds its memory.
EXPAND_ROWS = 2_000_000
#: Pairs per step of the vectorised distances.
PAIR_CHUNK = 200_000
#: A slight crop: at most this share of a dimension cut off (both ends together); splits of it
#: between the two ends are tried in steps of CROP_STEP.
MAX_CROP = 0.08
CROP_STEP = 0.005


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    return np.bitwise_count(x.astype(np.uint64))


def _bands(max_distance: int) -> list[tuple[int, int]]:
    """(shift, width) of the bands: ``max_distance // 2 + 1`` of them, so two hashes within
    ``max_distance`` bits differ in at most one bit on at least one band (pigeonhole)."""
    m = max_distance // 2 + 1
    widths = [HASH_BITS // m + (1 if n < HASH_BITS % m else 0) for n in range(m)]
    return [(sum(widths[:n]), w) for n, w in enumerate(widths)]


#: ``accept(left, right)``: which of these candidate pairs (index arrays) to keep.
Accept = Callable[[np.ndarray, np.ndarray], np.ndarray]


def hash_pairs(
    hashes: np.ndarray,
    max_distance: int,
    *,
    accept: Accept | None = None,
    max_bucket: int = 5_000,
    tally: list[int] | None = None,
) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, of hashes at most ``max_distance`` bits apart.

    Args:
        hashes: uint64 ``[n]``.
        max_distance: the Hamming distance allowed (0-15). The hash is cut into
            ``max_distance // 2 + 1`` bands; each image looks up its own value of each band and
            the values one bit away, so the work grows with the number of close pairs. A pair
            is taken from the first band that finds it, so none comes twice.
        accept: a cheap test of the close pairs, applied as they are found, so that only the
            pairs worth a closer look are ever held (a pool of similar photos has millions of
            close hashes).
        max_bucket: a band value shared by more images than this (a placeholder image, a blank
            backdrop) is not looked up in that band: such pairs are found by the other bands or
            not at all, instead of the work growing with the square of the bucket.
        tally: when given, ``tally[0]`` grows by the number of close pairs (before ``accept``).

    Returns:
        int64 ``[p, 2]``, sorted.
    """
    if not 0 <= max_distance <= 15:
        raise ValueError(f"max_distance must be 0-15, not {max_distance}")
    h = np.asarray(hashes, dtype=np.uint64)
    n = len(h)
    bands = _bands(max_distance)
    found: list[np.ndarray] = []
    for band, (shift, width) in enumerate(bands):
        keys = (h >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        values, first, counts = np.unique(keys[order], return_index=True, return_counts=True)
        crowded = counts > max_bucket
        if crowded.any():
            log.warning(
                "band %d: %d hash values shared by more than %d images each were not looked up",
                band,
                int(crowded.sum()),
                max_bucket,
            )
            counts = np.where(crowded, 0, counts)
        masks = [0] if max_distance == 0 else [0, *(1 << b for b in range(width))]
        step = _Step(h, order, max_distance, bands[:band], accept, tally)
        for mask in masks:
            probe = keys ^ np.uint64(mask)
            at = np.minimum(np.searchsorted(values, probe), len(values) - 1)
            hit = np.flatnonzero((values[at] == probe) & (counts[at] > 0))
            found += step.expand(hit, first[at[hit]], counts[at[hit]])
    codes = np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    return np.stack([codes // max(n, 1), codes % max(n, 1)], axis=1)


@dataclass
class _Step:
    """One band's look-ups: each image against every member of a probed bucket, in bounded steps."""

    h: np.ndarray
    order: np.ndarray
    max_distance: int
    earlier: list[tuple[int, int]]  # the bands before this one
    accept: Accept | None
    tally: list[int] | None

    def expand(self, images: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
        """Pair codes ``i * n + j`` of the close pairs found, each once."""
        out: list[np.ndarray] = []
        n = len(self.h)
        ends = np.cumsum(counts)
        begin = 0
        while begin < len(images):
            # the largest run of images whose partners fit in EXPAND_ROWS (at least one image)
            base = ends[begin - 1] if begin else 0
            stop = max(begin + 1, int(np.searchsorted(ends, base + EXPAND_ROWS, side="right")))
            c = counts[begin:stop]
            total = int(c.sum())
            left = np.repeat(images[begin:stop], c)
            offsets = np.arange(total) - np.repeat(np.cumsum(c) - c, c) + np.repeat(starts[begin:stop], c)
            right = self.order[offsets]
            keep = left < right
            left, right = left[keep], right[keep]
            x = self.h[left] ^ self.h[right]
            close = popcount(x) <= self.max_distance
            for shift, width in self.earlier:  # an earlier band found the pair already
                close &= popcount((x >> np.uint64(shift)) & np.uint64((1 << width) - 1)) >= 2
            left, right = left[close], right[close]
            if self.tally is not None:
                self.tally[0] += len(left)
            if self.accept is not None and len(left):
                ok = self.accept(left, right)
                left, right = left[ok], right[ok]
            out.append(left * n + right)
            begin = stop
        return out


def layout_prefilter(layouts: np.ndarray, sizes: np.ndarray, max_pixels: float, crop_gate: float) -> Accept:
    """An ``accept`` for :func:`hash_pairs`: the pairs whose layouts may be within ``max_pixels``
    (or ``crop_gate`` when one may be a crop of the other, :func:`croppable`).

    Judged on 4×4 block means, a lower bound of the layouts' mean difference: no pair that the
    full check would confirm is dropped, and the test costs 48 numbers a pair.
    """
    n, side = len(layouts), layouts.shape[1] // 4
    blocks = np.asarray(layouts, dtype=np.float32).reshape(n, 4, side, 4, side, 3).mean(axis=(2, 4))
    size = np.asarray(sizes, dtype=np.float64).reshape(n, 2)

    def accept(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        d = np.abs(blocks[left] - blocks[right]).mean(axis=(1, 2, 3))
        crop = croppable(size[left], size[right]) | croppable(size[right], size[left])
        return (d <= max_pixels) | ((d <= crop_gate) & crop)

    return accept


def hamming(hashes: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Bits in which each pair's hashes differ."""
    h = np.asarray(hashes, dtype=np.uint64)
    return popcount(h[pairs[:, 0]] ^ h[pairs[:, 1]]).astype(np.int64)


def cosines(vectors: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine of each pair's (unit) vectors, float32."""
    out = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(pairs), PAIR_CHUNK):
        p = pairs[start : start + PAIR_CHUNK]
        a = vectors[p[:, 0]].astype(np.float32)
        b = vectors[p[:, 1]].astype(np.float32)
        out[start : start + len(p)] = np.einsum("ij,ij->i", a, b)
    return out


def layout_distances(layouts: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Mean absolute colour difference (0-255) of each pair's layouts (uint8 ``[n, s, s, 3]``)."""
    out = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(pairs), PAIR_CHUNK // 8):
        p = pairs[start : start + PAIR_CHUNK // 8]
        a = layouts[p[:, 0]].astype(np.float32)
        b = layouts[p[:, 1]].astype(np.float32)
        out[start : start + len(p)] = np.abs(a - b).mean(axis=(1, 2, 3))
    return out


def _bin_matrix(lo: float, hi: float, side: int, out: int) -> np.ndarray:
    """``out`` × ``side`` weights averaging ``[lo, hi]`` of a ``side``-pixel line into ``out`` bins."""
    width = (hi - lo) / out
    a = lo + np.arange(out)[:, None] * width
    b = a + width
    p0 = np.arange(side)[None, :] / side
    overlap = np.clip(np.minimum(b, p0 + 1 / side) - np.maximum(a, p0), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def _splits(cut: float, side: int, out: int) -> np.ndarray:
    """Binning matrices of every split of ``cut`` between the two ends of a line, ``[k, out, side]``."""
    steps = max(1, round(cut / CROP_STEP))
    return np.stack([_bin_matrix(lo, 1 - (cut - lo), side, out) for lo in np.linspace(0, cut, steps + 1)])


def crop_cuts(size_a: tuple[int, int], size_b: tuple[int, int]) -> tuple[float, float] | None:
    """The share of A's width and height that B lacks, if B can be a slight crop of A (same scale).

    A crop keeps the pixels it keeps: B is A less at most :data:`MAX_CROP` of each dimension
    (and less something). A copy that was cropped and then resized is not looked for this way:
    on catalogues of similar photos, a zoom makes different items alike.
    """
    (wa, ha), (wb, hb) = size_a, size_b
    if not (wa and ha and wb and hb) or wb > wa or hb > ha or (wb, hb) == (wa, ha):
        return None
    cut_x, cut_y = 1 - wb / wa, 1 - hb / ha
    if cut_x > MAX_CROP or cut_y > MAX_CROP:
        return None
    return cut_x, cut_y


def croppable(size_a: np.ndarray, size_b: np.ndarray) -> np.ndarray:
    """:func:`crop_cuts` for arrays of sizes ``[p, 2]``: can B be a slight crop of A?"""
    a, b = np.asarray(size_a, dtype=np.float64), np.asarray(size_b, dtype=np.float64)
    smaller = (b <= a).all(axis=1) & (b != a).any(axis=1) & (b > 0).all(axis=1)
    return smaller & (b >= (1 - MAX_CROP) * a - 1e-9).all(axis=1)


def crop_distance(detail: np.ndarray, layout: np.ndarray, cut_x: float, cut_y: float) -> tuple[float, float]:
    """How far ``layout`` is from ``detail`` less ``cut_x`` of its width and ``cut_y`` of its
    height, at the split of the cuts between the two sides that fits best.

    Args:
        detail: image A at ``[side, side, 3]`` (0-255).
        layout: image B at ``[out, out, 3]``: is it A cropped (and resampled)?
        cut_x: the share of A's width B lacks (:func:`crop_cuts`); likewise ``cut_y``.

    Returns:
        The mean and the median absolute colour difference at the best split. A copy differs
        at its edges only (resampling, compression): its median is near 0. Another photo that
        happens to align differs a little everywhere (its backdrop's tint): its median is not.
    """
    side, out = detail.shape[0], layout.shape[0]
    rows, cols = _splits(cut_y, side, out), _splits(cut_x, side, out)
    kr, kc = len(rows), len(cols)
    # every split at once: rows binned per (top, bottom) split, then columns per (left, right)
    x = rows.reshape(kr * out, side) @ np.asarray(detail, dtype=np.float32).reshape(side, side * 3)
    x = x.reshape(kr * out, side, 3).transpose(0, 2, 1).reshape(kr * out * 3, side)
    y = (x @ cols.transpose(2, 0, 1).reshape(side, kc * out)).reshape(kr, out, 3, kc, out)
    target = np.asarray(layout, dtype=np.float32).transpose(0, 2, 1)[None, :, :, None, :]
    residual = np.abs(y - target)
    mean = residual.mean(axis=(1, 2, 4))
    i, j = np.unravel_index(int(mean.argmin()), mean.shape)
    return float(mean[i, j]), float(np.median(residual[i, :, :, j, :]))


def components(n: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of size > 1 of the graph on ``range(n)``, each sorted, by smallest member."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(find(x), []).append(x)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def spanning_tree(members: list[int], edges: dict[tuple[int, int], object]) -> dict[int, int]:
    """``member -> the member it was reached from``, breadth first from the smallest member."""
    adjacency: dict[int, list[int]] = {m: [] for m in members}
    for a, b in edges:
        if a in adjacency and b in adjacency:
            adjacency[a].append(b)
            adjacency[b].append(a)
    root = members[0]
    reached = {root: root}
    queue = [root]
    while queue:
        x = queue.pop(0)
        for y in sorted(adjacency[x]):
            if y not in reached:
                reached[y] = x
                queue.append(y)
    return reached
