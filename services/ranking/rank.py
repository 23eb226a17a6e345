"""Ranking a dataset: every query through each ranker, their runs pooled and written beside the old.

The rankers are listed in :mod:`services.ranking.rankers`. The candidate list of a query is the
union of each ranker's top-k, ordered by weighted reciprocal rank fusion; every pooled row keeps
each ranker's rank and score (``Candidate.rankers``), so a positive an
annotator adds from it carries where it came from. The new runs are a new generation
(:mod:`services.ranking.generations`) written in short transactions while annotators keep
working on the old one; one short transaction switches the dataset to them, and the old runs are
deleted in batches. A ranking that dies half-way leaves the previous runs visible; its partial
generation is deleted by the next ranking (its job is stale by then). Ranking reads the vectors
:func:`services.ranking.embed.embed_dataset` stored.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from db.bulk import AfterBatch, BatchSizer, insert_rows
from db.enums import Role, RunKind
from db.models import Candidate, Job
from db.session import Database
from models.embedder import ClipEmbedder
from models.fusion import PooledCandidate, fuse_runs
from models.lexical import Bm25Index
from models.search import topk
from models.store import EmbeddingStore, text_key
from services.core import jobs
from services.core.auth import SYSTEM, Actor, allow
from services.core.config import load_settings
from services.core.errors import ValidationError
from services.ranking import generations
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
    Progress,
)
from services.ranking.search import clear_search_cache

log = logging.getLogger(__name__)

JOB_KIND = "rank"  # Job.kind of a ranking (the admin page's job, or a CLI run)

#: ranker name -> query id -> [(item id, score)], best first
Runs = dict[str, dict[int, list[tuple[int, float]]]]


@dataclass(frozen=True)
class RankReport:
    k: int
    n_queries: int
    runs: dict[str, int]  # run name -> candidate rows written
    missing_images: int
    generation: int = 0  # the generation written (active unless a later ranking switched first)
    longest_write_s: float = 0.0  # the longest transaction of the candidate writes and deletes


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
    job_id: int | None = None,
    after_batch: AfterBatch | None = None,
    actor: Actor = SYSTEM,
) -> RankReport:
    """Rank every query with each ranker, pool them, and switch the dataset to the new runs.

    Needs :func:`services.ranking.embed.embed_dataset` first (it is cheap to rerun: only new
    content is embedded). Runs as the job ``job_id`` (the admin page's), or as a job of its own
    with a heartbeat (the CLI), so a second ranking of the dataset is refused while this one lives.

    Args:
        after_batch: called after each committed batch of candidate rows (tests pause here).

    Raises:
        ValidationError: k out of range, texts not embedded, or another ranking of the dataset runs.
    """
    if not 1 <= k <= 1000:
        raise ValidationError("k must be between 1 and 1000")
    with db.read() as s:
        pool = load_pool(s, dataset)
        queries = load_queries(s, pool.dataset_id)
    own_job = job_id is None
    if own_job:
        job_id = jobs.open_job(db, JOB_KIND, pool.dataset_id, params={"k": k}, what=repr(dataset))
        progress = _both(progress, jobs.progress_writer(db, job_id))
    try:
        with jobs.Heartbeat(db, job_id) if own_job else nullcontext(), _no_gc_pauses():
            report = _rank(db, dataset, pool, queries, k, embedder, data_dir, progress, job_id, after_batch)
    except Exception as e:
        if own_job:
            jobs.fail_job(db, job_id, e)
        raise
    if own_job:
        jobs.finish_job(
            db, job_id, f"ranked {report.n_queries} queries, {report.runs.get(POOLED, 0)} pooled candidates"
        )
    return report


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """No cyclic garbage collection while a ranking runs (in this process, for every thread).

    A ranking at 100,000 items holds millions of small objects (runs, pooled candidates), and each
    full collection walks all of them with the GIL held: a 3 s pause of every thread (every
    annotator's page) already at 2,000 items. Reference counting still frees everything; cycles
    made meanwhile wait for the end. Nested and concurrent rankings share one switch.
    """
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def _both(first: Progress | None, second: Progress) -> Progress:
    if first is None:
        return second

    def update(stage: str, done: int, total: int) -> None:
        first(stage, done, total)
        second(stage, done, total)

    return update


def _rank(
    db: Database,
    dataset: str,
    pool: Pool,
    queries: QuerySet,
    k: int,
    embedder: ClipEmbedder | None,
    data_dir: Path | None,
    progress: Progress | None,
    job_id: int,
    after_batch: AfterBatch | None,
) -> RankReport:
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
    params = {"k": k, "model_key": embedder.model_key}
    generation, written, longest = _write_generation(
        db, pool.dataset_id, runs, pooled, params, job_id, progress, after_batch
    )
    clear_search_cache()
    report = RankReport(
        k, len(queries.ids), written, len(pool.item_ids) - len(with_image), generation, longest
    )
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


def _write_generation(
    db: Database,
    dataset_id: int,
    runs: Runs,
    pooled: dict[int, list[PooledCandidate]],
    params: dict[str, Any],
    job_id: int,
    progress: Progress | None,
    after_batch: AfterBatch | None,
) -> tuple[int, dict[str, int], float]:
    """Write the runs as a new generation in short transactions, switch to it, delete the old.

    Returns:
        The generation, candidate rows per run, and the longest transaction (seconds).
    """
    target_s = load_settings().write_batch_ms / 1000
    sizer, deletes = BatchSizer(target_s=target_s), BatchSizer.for_keys(target_s)  # rows; query ids
    _delete_abandoned(db, dataset_id, job_id, deletes)
    specs = [(name, RunKind.RANKER, params) for name in runs]
    specs.append((POOLED, RunKind.POOLED, {**params, "fusion": "rrf"}))
    generation, run_ids = generations.begin_generation(db, dataset_id, specs)
    with db.write() as s:  # the job names its generation: a stale job's is deleted by the next one
        job = s.get(Job, job_id)
        job.params = {**(job.params or {}), "generation": generation}
    total = sum(len(hits) for run in runs.values() for hits in run.values())
    total += sum(len(cands) for cands in pooled.values())
    done = 0

    def batch_done(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("writing candidates", done, total)
        if after_batch is not None:
            after_batch(n)

    def rows(run_id: int, run: dict[int, list[tuple[int, float]]]) -> Iterator[dict[str, Any]]:
        for qid, hits in run.items():
            for r, (item, sc) in enumerate(hits, start=1):
                yield {
                    "run_id": run_id,
                    "query_id": qid,
                    "item_id": item,
                    "rank": r,
                    "score": sc,
                    "rankers": {},
                }

    def pooled_rows(run_id: int) -> Iterator[dict[str, Any]]:
        for qid, cands in pooled.items():
            for c in cands:
                yield {
                    "run_id": run_id,
                    "query_id": qid,
                    "item_id": c.item_id,
                    "rank": c.rank,
                    "score": c.score,
                    "rankers": c.rankers,
                }

    table = Candidate.__table__
    written = {
        name: insert_rows(db, table, rows(run_ids[name], run), sizer=sizer, after_batch=batch_done)
        for name, run in runs.items()
    }
    written[POOLED] = insert_rows(
        db, table, pooled_rows(run_ids[POOLED]), sizer=sizer, after_batch=batch_done
    )
    if not generations.switch_generation(db, dataset_id, generation, run_ids.values()):
        log.warning(
            "dataset %d: a later ranking switched first; generation %d is dropped", dataset_id, generation
        )
    old = generations.inactive_generations(db, dataset_id, keep=_live_generations(db, dataset_id, job_id))
    if progress is not None:
        progress("deleting the previous candidates", 0, 1)
    generations.delete_generations(db, dataset_id, old, sizer=deletes)
    return generation, written, max(sizer.longest_s, deletes.longest_s)


def _live_generations(db: Database, dataset_id: int, job_id: int) -> set[int]:
    """Generations other live ranking jobs of the dataset are writing (not to be deleted)."""
    jobs.fail_stale_jobs(db, kind=JOB_KIND, dataset_id=dataset_id)
    with db.read() as s:
        return {
            int(j.params["generation"])
            for j in jobs.live_jobs(s, JOB_KIND, dataset_id)
            if j.id != job_id and isinstance((j.params or {}).get("generation"), int)
        }


def _delete_abandoned(db: Database, dataset_id: int, job_id: int, sizer: BatchSizer) -> None:
    """Delete the partial generations of rankings that died before their switch."""
    abandoned = generations.inactive_generations(
        db, dataset_id, keep=_live_generations(db, dataset_id, job_id)
    )
    if abandoned:
        log.info("dataset %d: deleting abandoned generations %s", dataset_id, abandoned)
        generations.delete_generations(db, dataset_id, abandoned, sizer=sizer)
