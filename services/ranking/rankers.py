"""The rankers' names, the weights that order their pooled list, and the progress callback.

Rankers:

- ``clip_image``: CLIP query text → item image (composed queries: text + reference images);
- ``clip_text``: CLIP query text → item title and text (same query vector). With a multilingual
  text tower (the demo model's is trained on English and German query ↔ item-text pairs,
  :mod:`demo.train_text`) it matches across languages: "leather" finds "Leder";
- ``bm25``: lexical BM25 over item title and text: the query's exact words (brand names, sizes);
- ``hybrid``: the three rankers' scores over the whole pool, each standardised per query (BM25
  within each item language), weighted by :data:`EVIDENCE_WEIGHTS` and summed
  (:mod:`services.ranking.hybrid`). The demo's (and MCMR's) conditions are split between the
  image and the text, so an item that satisfies all of them is often outside every
  single-evidence top-k list; adding the standardised scores ranks exactly those items first.

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
# Weighted RRF for the pooled order. ``hybrid`` holds every ranker's evidence, so it counts double;
# the single-modality text rankers see only half of an image-and-text query's evidence, so they
# count half. Every ranker's candidates are in the pool whatever its weight; the weights only
# order it (and so decide what is in its top 50).
FUSION_WEIGHTS = {CLIP_IMAGE: 1.0, HYBRID: 2.0, BM25: 0.5, CLIP_TEXT: 0.5}

# What the hybrid ranker and pool search add up, each score standardised over the pool: the
# image evidence (colour, pattern, type), the item text read by the CLIP text tower (material,
# brand, size, type, in either language), and BM25's exact words. Standardised cosine
# similarities are about normal (the best items a few units up); standardised BM25 is heavy-tailed
# (a word that 1 item in 100 carries puts it about 10 units up), so BM25 counts a fifth.
EVIDENCE_WEIGHTS = {CLIP_IMAGE: 1.0, CLIP_TEXT: 1.0, BM25: 0.2}
# BM25's coordination exponent in that sum (models.lexical.Bm25Index.scores): an item's score is
# scaled by the square of the share of the query's words it carries, so one that has every
# attribute word asked for ranks above one that repeats some of them.
BM25_COORDINATION = 2.0

#: ``progress(stage, done, total)``: called as embedding and ranking advance.
Progress = Callable[[str, int, int], None]
