"""The rankers' names, the weights that order their pooled list, and the progress callback.

Rankers:

- ``clip_image``: CLIP query text → item image (composed queries: text + reference images);
- ``clip_text``: CLIP query text → item title and text (same query vector);
- ``bm25``: lexical BM25 over item title and text;
- ``hybrid``: CLIP image and BM25 scores over the whole pool, each standardised per query (BM25
  within each item language), summed (:mod:`services.ranking.hybrid`).
  The demo's (and MCMR's) conditions are split between the image and the text, so an item that
  satisfies all of them is often outside both single-evidence top-k lists; adding the two
  standardised scores ranks exactly those items first.

A query's candidate list (the ``pooled`` run) is the union of each ranker's top-k, ordered by
weighted reciprocal rank fusion (:data:`FUSION_WEIGHTS`). Shared by the ranking job
(:mod:`services.ranking.rank`) and pool search (:mod:`services.ranking.search`).
"""

from __future__ import annotations

from collections.abc import Callable

CLIP_IMAGE = "clip_image"
CLIP_TEXT = "clip_text"
BM25 = "bm25"
HYBRID = "hybrid"
POOLED = "pooled"
RANKERS = (CLIP_IMAGE, CLIP_TEXT, BM25, HYBRID)
# Weighted RRF for the pooled order: the single-modality text rankers see only half of an
# image-and-text query's evidence (and BM25's is inside ``hybrid`` already), so they count half.
# Every ranker's candidates are in the pool whatever its weight; the weights only order it.
FUSION_WEIGHTS = {CLIP_IMAGE: 1.0, HYBRID: 1.0, BM25: 0.5, CLIP_TEXT: 0.5}

#: ``progress(stage, done, total)``: called as embedding and ranking advance.
Progress = Callable[[str, int, int], None]
