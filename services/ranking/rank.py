"""Ranking a dataset: every query through each ranker, their runs pooled and written in one go.

The rankers are listed in :mod:`services.ranking.rankers`. The candidate list of a query is the
union of each ranker's top-k, ordered by weighted reciprocal rank fusion; every pooled row keeps
each ranker's rank and score (``Candidate.rankers``), so a positive an
annotator adds from it carries where it came from. The runs of a dataset are replaced in one
transaction: a ranking that dies half-way leaves the previous runs as they were. Ranking reads
the vectors :func:`services.ranking.embed.embed_dataset` stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from db.enums import Role, RunKind
from db.models import Candidate, RankerRun
from db.session import Database
from models.embedder import ClipEmbedder
from models.fusion import PooledCandidate, fuse_runs
from models.lexical import Bm25Index
from models.search import topk
from models.store import EmbeddingStore, text_key
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.ranking.hybrid import hybrid_run
from services.ranking.models import embedder_for, store_for
from services.ranking.pool import Pool, QuerySet, load_pool, load_queries, normalise, rows_with_image
from services.ranking.rankers import (
    BM25,
    CLIP_IMAGE,
    CLIP_TEXT,
    FUSION_WEIGHTS,
    HYBRID,
    POOLED,
    RANKERS,
    Progress,
)
from services.ranking.search import clear_search_cache

log = logging.getLogger(__name__)

INSERT_BATCH = 10_000

#: ranker name -> query id -> [(item id, score)], best first
Runs = dict[str, dict[int, list[tuple[int, float]]]]


@dataclass(frozen=True)
class RankReport:
    k: int
    n_queries: int
    runs: dict[str, int]  # run name -> candidate rows written
    missing_images: int


def _query_vectors(store: EmbeddingStore, pool: Pool, queries: QuerySet) -> np.ndarray:
    """Query text vectors; a composed query adds the mean of its reference images' vectors."""
    vectors = normalise(store.get("query", [text_key(t) for t in queries.texts]))
    index = {item_id: n for n, item_id in enumerate(pool.item_ids)}
    wanted = {k for refs in queries.ref_image_keys for k in refs}
    wanted |= {
        pool.image_keys[index[i]] for refs in queries.ref_items for i in refs if pool.image_keys[index[i]]
    }
    absent = set(store.missing("image", sorted(wanted)))
    for n in range(len(queries.ids)):
        keys = [pool.image_keys[index[i]] for i in queries.ref_items[n] if pool.image_keys[index[i]]]
        keys += queries.ref_image_keys[n]
        keys = [k for k in keys if k not in absent]
        if keys:
            refs = normalise(store.get("image", keys)).mean(axis=0)
            vectors[n] = vectors[n] + refs / max(np.linalg.norm(refs), 1e-12)
    return normalise(vectors)


@allow(Role.ADMIN)
def rank_dataset(
    db: Database,
    dataset: str,
    *,
    k: int = 100,
    embedder: ClipEmbedder | None = None,
    data_dir: Path | None = None,
    progress: Progress | None = None,
    actor: Actor = SYSTEM,
) -> RankReport:
    """Rank every query with each ranker, pool them, and replace the dataset's runs in one go.

    Needs :func:`services.ranking.embed.embed_dataset` first (it is cheap to rerun: only new
    content is embedded).
    """
    if not 1 <= k <= 1000:
        raise ValidationError("k must be between 1 and 1000")
    with db.read() as s:
        pool = load_pool(s, dataset)
        queries = load_queries(s, pool.dataset_id)
    embedder = embedder or embedder_for(pool.settings)
    store = store_for(embedder, data_dir)
    missing_text = store.missing("text", pool.text_keys) + store.missing(
        "query", [text_key(t) for t in queries.texts]
    )
    if missing_text:
        raise ValidationError(
            f"{len(missing_text)} texts are not embedded yet; run `cli.py embed --dataset {dataset}`"
        )

    with_image = rows_with_image(store, pool)
    runs = _ranker_runs(store, pool, queries, with_image, k, progress)
    pooled = fuse_runs(runs, k=len(runs) * k, weights=FUSION_WEIGHTS)  # the union of every ranker's top-k
    written = _write_runs(db, pool.dataset_id, runs, pooled, {"k": k, "model_key": embedder.model_key})
    clear_search_cache()
    report = RankReport(k, len(queries.ids), written, len(pool.item_ids) - len(with_image))
    log.info("ranked %s: %s", dataset, report)
    return report


def _ranker_runs(
    store: EmbeddingStore,
    pool: Pool,
    queries: QuerySet,
    with_image: list[int],
    k: int,
    progress: Progress | None,
) -> Runs:
    """Each ranker's top ``k`` per query, a composed query's reference items left out."""
    q_vec = _query_vectors(store, pool, queries)
    runs: Runs = {}
    depth = min(k + 8, len(pool.item_ids))  # a little deeper: reference items are dropped below

    def as_run(scores: np.ndarray, idx: np.ndarray, columns: list[int]) -> dict[int, list[tuple[int, float]]]:
        return {
            qid: [
                (pool.item_ids[columns[j]], float(sc))
                for j, sc in zip(idx[n], scores[n], strict=True)
                if j >= 0
            ]
            for n, qid in enumerate(queries.ids)
        }

    if with_image:
        image_matrix = store.get("image", [pool.image_keys[n] for n in with_image])
        scores, idx = topk(q_vec, image_matrix, min(depth, len(with_image)))
        runs[CLIP_IMAGE] = as_run(scores, idx, with_image)
    if progress is not None:
        progress("ranking", 1, 3)
    text_matrix = store.get("text", pool.text_keys)
    scores, idx = topk(q_vec, text_matrix, depth)
    runs[CLIP_TEXT] = as_run(scores, idx, list(range(len(pool.item_ids))))
    if progress is not None:
        progress("ranking", 2, 3)
    bm25 = Bm25Index.build([str(i) for i in pool.item_ids], pool.texts)
    hits, bm_scores = bm25.search(queries.texts, depth)
    runs[BM25] = {
        qid: [(int(i), float(sc)) for i, sc in zip(hits[n], bm_scores[n], strict=True)]
        for n, qid in enumerate(queries.ids)
    }
    runs[HYBRID] = hybrid_run(q_vec, store, pool, with_image, bm25, queries, depth)
    if progress is not None:
        progress("ranking", 3, 3)

    # A composed query's reference items are not its candidates.
    excluded = {qid: set(refs) for qid, refs in zip(queries.ids, queries.ref_items, strict=True) if refs}
    for run in runs.values():
        for qid, drop in excluded.items():
            run[qid] = [(i, sc) for i, sc in run[qid] if i not in drop]
    return {name: {qid: hits[:k] for qid, hits in run.items()} for name, run in runs.items()}


def _write_runs(
    db: Database,
    dataset_id: int,
    runs: Runs,
    pooled: dict[int, list[PooledCandidate]],
    params: dict[str, Any],
) -> dict[str, int]:
    """Replace the dataset's ranker and pooled runs in one transaction; candidate rows per run."""
    written: dict[str, int] = {}
    with db.write() as s:
        s.execute(
            delete(RankerRun).where(
                RankerRun.dataset_id == dataset_id, RankerRun.name.in_([*RANKERS, POOLED])
            )
        )
        for name, run in runs.items():
            run_row = RankerRun(dataset_id=dataset_id, name=name, kind=RunKind.RANKER, params=params)
            s.add(run_row)
            s.flush()
            rows = [
                {
                    "run_id": run_row.id,
                    "query_id": qid,
                    "item_id": item,
                    "rank": r,
                    "score": sc,
                    "rankers": {},
                }
                for qid, hits in run.items()
                for r, (item, sc) in enumerate(hits, start=1)
            ]
            written[name] = _insert(s, rows)
        pooled_row = RankerRun(
            dataset_id=dataset_id, name=POOLED, kind=RunKind.POOLED, params={**params, "fusion": "rrf"}
        )
        s.add(pooled_row)
        s.flush()
        rows = [
            {
                "run_id": pooled_row.id,
                "query_id": qid,
                "item_id": c.item_id,
                "rank": c.rank,
                "score": c.score,
                "rankers": c.rankers,
            }
            for qid, cands in pooled.items()
            for c in cands
        ]
        written[POOLED] = _insert(s, rows)
    return written


def _insert(s: Session, rows: list[dict[str, Any]]) -> int:
    for start in range(0, len(rows), INSERT_BATCH):
        s.execute(insert(Candidate), rows[start : start + INSERT_BATCH])
    return len(rows)
