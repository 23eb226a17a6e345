"""Candidate ranking: embed a dataset's pool, rank every query with several rankers, pool them.

Rankers:

- ``clip_image``: CLIP query text → item image (composed queries: text + reference images);
- ``clip_text``: CLIP query text → item title and text (same query vector);
- ``bm25``: lexical BM25 over item title and text;
- ``hybrid``: CLIP image and BM25 scores over the whole pool, each standardised per query (BM25
  within each item language), summed.
  The demo's (and MCMR's) conditions are split between the image and the text, so an item that
  satisfies all of them is often outside both single-evidence top-k lists; adding the two
  standardised scores ranks exactly those items first.

The candidate list of a query is the union of each ranker's top-k, ordered by weighted reciprocal
rank fusion (:data:`FUSION_WEIGHTS`); every pooled row keeps each ranker's rank and score
(``Candidate.sources``), so a positive an annotator adds from it carries where it came from. Embeddings live in the on-disk
:class:`models.store.EmbeddingStore`, keyed by content, so reruns embed only what is new.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from db.enums import ImageStatus, Role
from db.models import Candidate, Dataset, Item, Job, Query, QueryRef, RankerRun, utcnow
from db.session import Database
from models.embedder import (
    DEMO_CHECKPOINT,
    DEMO_MODEL,
    PRETRAINED_ENV,
    ClipEmbedder,
    ModelLoadError,
    load_clip,
)
from models.fusion import fuse_runs
from models.lexical import Bm25Index
from models.search import topk
from models.store import EmbeddingStore, item_text_key, text_key
from services.core.auth import SYSTEM, Actor, allow
from services.core.config import load_settings
from services.core.errors import ModelUnavailable, NotFoundError, ValidationError
from services.core.lookups import dataset_or_404
from services.core.media import MediaStore

log = logging.getLogger(__name__)

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
HYBRID_CHUNK = 256  # queries per block of full-pool scores: bounds memory at 256 x pool size
DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
EMBED_CHUNK = 2048  # images per stored shard: an interrupted run loses at most one chunk
INSERT_BATCH = 10_000

Progress = Callable[[str, int, int], None]


# --------------------------------------------------------------------------- model choice


def model_for(settings: dict[str, Any]) -> tuple[str, str]:
    """(model, pretrained) for a dataset: its own settings, then the environment, then defaults."""
    model = settings.get("clip_model") or os.environ.get("QRELS_CLIP_MODEL") or DEFAULT_MODEL
    pretrained = os.environ.get(PRETRAINED_ENV) or settings.get("clip_pretrained") or DEFAULT_PRETRAINED
    if model == DEMO_MODEL and pretrained == "demo":
        pretrained = str(DEMO_CHECKPOINT)
    return model, pretrained


DEMO_SETTINGS = {"clip_model": DEMO_MODEL, "clip_pretrained": "demo"}

_embedders: dict[tuple[str, str], ClipEmbedder] = {}
_embedders_lock = threading.Lock()


def embedder_for(settings: dict[str, Any]) -> ClipEmbedder:
    """The process-wide embedder for a dataset's model (loaded once)."""
    key = model_for(settings)
    with _embedders_lock:
        if key not in _embedders:
            try:
                _embedders[key] = load_clip(*key)
            except ModelLoadError as e:
                raise ModelUnavailable(str(e)) from e
        return _embedders[key]


def _store(embedder: ClipEmbedder, data_dir: Path | None = None) -> EmbeddingStore:
    return EmbeddingStore((data_dir or load_settings().data_dir) / "embeddings", embedder.model_key)


# --------------------------------------------------------------------------- loading a dataset


@dataclass
class _Pool:
    dataset_id: int
    settings: dict[str, Any]
    item_ids: list[int]
    ext_ids: list[str]
    image_keys: list[str | None]
    image_ext: list[str | None]
    text_keys: list[str]
    texts: list[str]
    languages: list[str | None]


def _load_pool(db: Database, dataset: str) -> _Pool:
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        rows = s.execute(
            select(
                Item.id,
                Item.ext_id,
                Item.title,
                Item.text,
                Item.image_sha256,
                Item.image_ext,
                Item.image_status,
                Item.language,
            )
            .where(Item.dataset_id == ds.id)
            .order_by(Item.id)
        ).all()
        return _Pool(
            ds.id,
            dict(ds.settings or {}),
            [r.id for r in rows],
            [r.ext_id for r in rows],
            [r.image_sha256 if r.image_status == ImageStatus.OK else None for r in rows],
            [r.image_ext for r in rows],
            [item_text_key(r.title, r.text) for r in rows],
            [f"{r.title}\n{r.text}" for r in rows],
            [r.language for r in rows],
        )


@dataclass
class _QuerySet:
    ids: list[int]
    texts: list[str]
    ref_items: list[list[int]]
    ref_image_keys: list[list[str]]


def _load_queries(db: Database, dataset_id: int) -> _QuerySet:
    with db.read() as s:
        queries = s.execute(
            select(Query.id, Query.text)
            .where(Query.dataset_id == dataset_id)
            .order_by(Query.position, Query.id)
        ).all()
        refs = s.execute(
            select(QueryRef.query_id, QueryRef.item_id, QueryRef.image_sha256)
            .join(Query, Query.id == QueryRef.query_id)
            .where(Query.dataset_id == dataset_id)
            .order_by(QueryRef.query_id, QueryRef.position)
        ).all()
    ref_items: dict[int, list[int]] = {}
    ref_images: dict[int, list[str]] = {}
    for qid, item_id, sha in refs:
        if item_id is not None:
            ref_items.setdefault(qid, []).append(item_id)
        elif sha is not None:
            ref_images.setdefault(qid, []).append(sha)
    return _QuerySet(
        [q.id for q in queries],
        [q.text for q in queries],
        [ref_items.get(q.id, []) for q in queries],
        [ref_images.get(q.id, []) for q in queries],
    )


# --------------------------------------------------------------------------- embedding


@dataclass(frozen=True)
class EmbedReport:
    dataset: str
    model_key: str
    images_embedded: int
    images_stored_before: int
    texts_embedded: int
    queries_embedded: int
    failed: list[tuple[str, str]] = field(default_factory=list)  # (item ext id, reason)


@allow(Role.ADMIN)
def embed_dataset(
    db: Database,
    dataset: str,
    *,
    embedder: ClipEmbedder | None = None,
    data_dir: Path | None = None,
    progress: Progress | None = None,
    actor: Actor = SYSTEM,
) -> EmbedReport:
    """Embed every item image, item text and query text not stored yet (resumable).

    Unreadable images are reported by item id and skipped; the rest of the job goes on.
    """
    pool = _load_pool(db, dataset)
    embedder = embedder or embedder_for(pool.settings)
    store = _store(embedder, data_dir)
    media = MediaStore(data_dir or load_settings().data_dir)
    queries = _load_queries(db, pool.dataset_id)

    # Images, deduplicated by content; stored in chunks so an interrupted run resumes.
    by_key: dict[str, tuple[str, Path]] = {}
    for ext_id, key, ext in zip(pool.ext_ids, pool.image_keys, pool.image_ext, strict=True):
        if key is not None and key not in by_key:
            by_key[key] = (ext_id, media.original_path(key, ext or "jpg"))
    with db.read() as s:
        for sha, ext in s.execute(
            select(QueryRef.image_sha256, QueryRef.image_ext)
            .join(Query)
            .where(Query.dataset_id == pool.dataset_id, QueryRef.image_sha256.is_not(None))
        ):
            by_key.setdefault(sha, (f"query-ref:{sha[:12]}", media.original_path(sha, ext or "jpg")))
    todo = store.missing("image", list(by_key))
    failed: list[tuple[str, str]] = []
    embedded = 0
    for start in range(0, len(todo), EMBED_CHUNK):
        chunk = todo[start : start + EMBED_CHUNK]
        result = embedder.embed_image_files([(key, by_key[key][1]) for key in chunk])
        if result.ids:
            store.put("image", result.ids, result.vectors)
        failed.extend((by_key[key][0], reason) for key, reason in result.failed)
        embedded += len(result.ids)
        if progress is not None:
            progress("embedding images", min(start + EMBED_CHUNK, len(todo)), len(todo))

    texts_done = _embed_texts(
        store, embedder, "text", dict(zip(pool.text_keys, pool.texts, strict=True)), progress
    )
    query_texts = {text_key(t): t for t in queries.texts}
    queries_done = _embed_texts(store, embedder, "query", query_texts, progress)
    report = EmbedReport(
        dataset, embedder.model_key, embedded, len(by_key) - len(todo), texts_done, queries_done, failed
    )
    log.info("embedded %s: %s", dataset, report)
    return report


def _embed_texts(
    store: EmbeddingStore, embedder: ClipEmbedder, kind: str, texts: dict[str, str], progress: Progress | None
) -> int:
    todo = store.missing(kind, list(texts))
    for start in range(0, len(todo), EMBED_CHUNK):
        chunk = todo[start : start + EMBED_CHUNK]
        store.put(kind, chunk, embedder.embed_texts([texts[k] for k in chunk]))
        if progress is not None:
            progress(f"embedding {kind}s", min(start + EMBED_CHUNK, len(todo)), len(todo))
    return len(todo)


# --------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class RankReport:
    dataset: str
    k: int
    n_queries: int
    runs: dict[str, int]  # run name -> candidate rows written
    missing_images: int


def _rows_with_image(store: EmbeddingStore, pool: _Pool) -> list[int]:
    """Positions of the items whose image vector is stored (unreadable images have none)."""
    absent = set(store.missing("image", sorted({k for k in pool.image_keys if k})))
    return [n for n, key in enumerate(pool.image_keys) if key and key not in absent]


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _query_vectors(store: EmbeddingStore, pool: _Pool, queries: _QuerySet) -> np.ndarray:
    """Query text vectors; a composed query adds the mean of its reference images' vectors."""
    vectors = _normalise(store.get("query", [text_key(t) for t in queries.texts]))
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
            refs = _normalise(store.get("image", keys)).mean(axis=0)
            vectors[n] = vectors[n] + refs / max(np.linalg.norm(refs), 1e-12)
    return _normalise(vectors)


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

    Needs :func:`embed_dataset` first (it is cheap to rerun: only new content is embedded).
    """
    if not 1 <= k <= 1000:
        raise ValidationError("k must be between 1 and 1000")
    pool = _load_pool(db, dataset)
    embedder = embedder or embedder_for(pool.settings)
    store = _store(embedder, data_dir)
    queries = _load_queries(db, pool.dataset_id)
    missing_text = store.missing("text", pool.text_keys) + store.missing(
        "query", [text_key(t) for t in queries.texts]
    )
    if missing_text:
        raise ValidationError(
            f"{len(missing_text)} texts are not embedded yet; run `cli.py embed --dataset {dataset}`"
        )

    with_image = _rows_with_image(store, pool)
    q_vec = _query_vectors(store, pool, queries)
    runs: dict[str, dict[int, list[tuple[int, float]]]] = {}
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
    runs[HYBRID] = _hybrid_run(q_vec, store, pool, with_image, bm25, queries, depth)
    if progress is not None:
        progress("ranking", 3, 3)

    # A composed query's reference items are not its candidates.
    excluded = {qid: set(refs) for qid, refs in zip(queries.ids, queries.ref_items, strict=True) if refs}
    for run in runs.values():
        for qid, drop in excluded.items():
            run[qid] = [(i, sc) for i, sc in run[qid] if i not in drop]
    for name in runs:
        runs[name] = {qid: hits[:k] for qid, hits in runs[name].items()}
    pooled = fuse_runs(runs, k=len(runs) * k, weights=FUSION_WEIGHTS)  # the union of every ranker's top-k

    written: dict[str, int] = {}
    params = {"k": k, "model_key": embedder.model_key}
    with db.write() as s:
        s.execute(
            delete(RankerRun).where(
                RankerRun.dataset_id == pool.dataset_id, RankerRun.name.in_([*RANKERS, POOLED])
            )
        )
        for name, run in runs.items():
            run_row = RankerRun(dataset_id=pool.dataset_id, name=name, kind="ranker", params=params)
            s.add(run_row)
            s.flush()
            rows = [
                {
                    "run_id": run_row.id,
                    "query_id": qid,
                    "item_id": item,
                    "rank": r,
                    "score": sc,
                    "sources": {},
                }
                for qid, hits in run.items()
                for r, (item, sc) in enumerate(hits, start=1)
            ]
            written[name] = _insert(s, rows)
        pooled_row = RankerRun(
            dataset_id=pool.dataset_id, name=POOLED, kind="pooled", params={**params, "fusion": "rrf"}
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
                "sources": c.sources,
            }
            for qid, cands in pooled.items()
            for c in cands
        ]
        written[POOLED] = _insert(s, rows)
    _search_cache.clear()
    report = RankReport(dataset, k, len(queries.ids), written, len(pool.item_ids) - len(with_image))
    log.info("ranked %s: %s", dataset, report)
    return report


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)


def _standardise_by_group(x: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Standardise each group of columns on its own. BM25 scores of items in different languages
    are not comparable (a query shares words with items in its own language only), so lexical
    evidence is standardised within each item language before it is added to the image score."""
    if len(groups) <= 1:
        return _standardise(x)
    out = np.empty_like(x)
    for columns in groups:
        out[:, columns] = _standardise(x[:, columns])
    return out


def _hybrid_run(
    q_vec: np.ndarray,
    store: EmbeddingStore,
    pool: _Pool,
    with_image: list[int],
    bm25: Bm25Index,
    queries: _QuerySet,
    depth: int,
) -> dict[int, list[tuple[int, float]]]:
    """Per query, z(CLIP image score) + z(BM25 score) over every item; top ``depth``."""
    n_items = len(pool.item_ids)
    groups = [
        np.array([n for n, lang in enumerate(pool.languages) if lang == value])
        for value in set(pool.languages)
    ]
    image_matrix = (
        _normalise(store.get("image", [pool.image_keys[n] for n in with_image])) if with_image else None
    )
    run: dict[int, list[tuple[int, float]]] = {}
    for start in range(0, len(queries.ids), HYBRID_CHUNK):
        stop = min(start + HYBRID_CHUNK, len(queries.ids))
        visual = np.zeros((stop - start, n_items), dtype=np.float32)
        if image_matrix is not None:
            sims = q_vec[start:stop] @ image_matrix.T
            visual[:] = sims.min(axis=1, keepdims=True)  # items without an image: the worst score
            visual[:, with_image] = sims
        lexical = np.stack([bm25.scores(queries.texts[n]) for n in range(start, stop)])
        fused = _standardise(visual) + _standardise_by_group(lexical, groups)
        top = np.argpartition(-fused, min(depth, n_items) - 1, axis=1)[:, :depth]
        for row, n in enumerate(range(start, stop)):
            order = top[row][np.lexsort((top[row], -fused[row, top[row]]))]
            run[queries.ids[n]] = [(pool.item_ids[j], float(fused[row, j])) for j in order]
    return run


def _insert(s: Session, rows: list[dict[str, Any]]) -> int:
    for start in range(0, len(rows), INSERT_BATCH):
        s.execute(insert(Candidate), rows[start : start + INSERT_BATCH])
    return len(rows)


# --------------------------------------------------------------------------- pool search


@dataclass(frozen=True)
class SearchHit:
    item_id: int
    rank: int
    score: float
    sources: dict[str, Any]


@dataclass
class _SearchIndex:
    embedder: ClipEmbedder
    item_ids: list[int]
    image_rows: list[int]  # positions in item_ids that have an image vector
    image_matrix: np.ndarray | None
    text_matrix: np.ndarray
    bm25: Bm25Index


_search_cache: dict[tuple[str, str], _SearchIndex] = {}
_search_lock = threading.Lock()


def _search_index(
    db: Database, dataset: str, data_dir: Path | None, embedder: ClipEmbedder | None
) -> _SearchIndex:
    key = (db.url, dataset)
    with _search_lock:
        cached = _search_cache.get(key)
        if cached is not None:
            return cached
        pool = _load_pool(db, dataset)
        embedder = embedder or embedder_for(pool.settings)
        store = _store(embedder, data_dir)
        if store.missing("text", pool.text_keys):
            raise ValidationError(
                f"the pool of {dataset!r} is not embedded yet; an admin runs the ranking job"
            )
        rows = _rows_with_image(store, pool)
        image_matrix = _normalise(store.get("image", [pool.image_keys[n] for n in rows])) if rows else None
        index = _SearchIndex(
            embedder,
            pool.item_ids,
            rows,
            image_matrix,
            _normalise(store.get("text", pool.text_keys)),
            Bm25Index.build([str(i) for i in pool.item_ids], pool.texts),
        )
        _search_cache[key] = index
        return index


@allow(Role.ANNOTATOR, Role.REVIEWER)
def search_pool(
    db: Database,
    dataset: str,
    *,
    actor: Actor,
    text: str | None = None,
    like_item: int | None = None,
    k: int = 20,
    data_dir: Path | None = None,
    embedder: ClipEmbedder | None = None,
) -> list[SearchHit]:
    """Search the whole pool: free text (the same three rankers, fused) or "more like this"
    from an item (image → image, falling back to its text when it has no image)."""
    if (text is None or not text.strip()) and like_item is None:
        raise ValidationError("type something to search for")
    index = _search_index(db, dataset, data_dir, embedder)
    depth = min(max(k * 3, 50), len(index.item_ids))
    runs: dict[str, dict[int, list[tuple[int, float]]]] = {}
    if like_item is not None:
        try:
            position = index.item_ids.index(like_item)
        except ValueError as e:
            raise NotFoundError(f"item {like_item} is not in dataset {dataset!r}") from e
        if index.image_matrix is not None and position in index.image_rows:
            vector = index.image_matrix[index.image_rows.index(position)][None, :]
            scores, idx = topk(vector, index.image_matrix, min(depth + 1, len(index.image_rows)))
            hits = [
                (index.item_ids[index.image_rows[j]], float(sc))
                for j, sc in zip(idx[0], scores[0], strict=True)
            ]
            runs[CLIP_IMAGE] = {0: hits}
        else:
            vector = index.text_matrix[position][None, :]
            scores, idx = topk(vector, index.text_matrix, depth + 1)
            runs[CLIP_TEXT] = {
                0: [(index.item_ids[j], float(sc)) for j, sc in zip(idx[0], scores[0], strict=True)]
            }
        for run in runs.values():
            run[0] = [(i, sc) for i, sc in run[0] if i != like_item]
    else:
        vector = _normalise(index.embedder.embed_texts([text.strip()]))
        if index.image_matrix is not None:
            scores, idx = topk(vector, index.image_matrix, min(depth, len(index.image_rows)))
            runs[CLIP_IMAGE] = {
                0: [
                    (index.item_ids[index.image_rows[j]], float(sc))
                    for j, sc in zip(idx[0], scores[0], strict=True)
                ]
            }
        scores, idx = topk(vector, index.text_matrix, depth)
        runs[CLIP_TEXT] = {
            0: [(index.item_ids[j], float(sc)) for j, sc in zip(idx[0], scores[0], strict=True)]
        }
        hits, bm_scores = index.bm25.search([text.strip()], depth)
        runs[BM25] = {0: [(int(i), float(sc)) for i, sc in zip(hits[0], bm_scores[0], strict=True)]}
    fused = fuse_runs(runs, k=k, weights=FUSION_WEIGHTS).get(0, [])
    return [SearchHit(c.item_id, c.rank, c.score, c.sources) for c in fused]


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class JobStatus:
    id: int
    kind: str
    status: str
    done: int
    total: int
    message: str


def _job_progress(db: Database, job_id: int) -> Progress:
    def update(stage: str, done: int, total: int) -> None:
        with db.write() as s:
            job = s.get(Job, job_id)
            job.status, job.done, job.total, job.message = "running", done, total, stage
            job.updated_at = utcnow()

    return update


def _run_ranking_job(db: Database, job_id: int, dataset: str, k: int) -> None:
    """Embed then rank, recording progress and the outcome on the job row."""
    progress = _job_progress(db, job_id)
    try:
        embed = embed_dataset(db, dataset, progress=progress)
        rank = rank_dataset(db, dataset, k=k, progress=progress)
    except Exception as e:  # the job records any failure for the admin page, then re-raises
        with db.write() as s:
            job = s.get(Job, job_id)
            job.status, job.message, job.updated_at = "failed", f"{type(e).__name__}: {e}", utcnow()
        raise
    with db.write() as s:
        job = s.get(Job, job_id)
        job.status = "done"
        job.message = (
            f"embedded {embed.images_embedded} images, {embed.texts_embedded} texts, "
            f"{embed.queries_embedded} queries ({len(embed.failed)} unreadable); "
            f"ranked {rank.n_queries} queries, {rank.runs.get(POOLED, 0)} pooled candidates"
        )
        job.updated_at = utcnow()


@allow(Role.ADMIN)
def start_ranking_job(db: Database, dataset: str, *, k: int = 100, actor: Actor = SYSTEM) -> int:
    """Start embed + rank in a background thread of this process; return the job id to poll."""
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        running = s.scalar(
            select(Job.id).where(
                Job.dataset_id == ds.id, Job.kind == "rank", Job.status.in_(("queued", "running"))
            )
        )
        if running is not None:
            raise ValidationError(f"a ranking job for {dataset!r} is already running (job {running})")
        job = Job(kind="rank", dataset_id=ds.id, status="queued", params={"k": k}, message="starting")
        s.add(job)
        s.flush()
        job_id = job.id

    def target() -> None:
        try:
            _run_ranking_job(db, job_id, dataset, k)
        except Exception:
            log.exception("ranking job %d failed", job_id)

    threading.Thread(target=target, name=f"rank-{dataset}", daemon=True).start()
    return job_id


@allow(Role.ADMIN)
def latest_jobs(db: Database, dataset: str, limit: int = 5, *, actor: Actor = SYSTEM) -> list[JobStatus]:
    with db.read() as s:
        rows = s.scalars(
            select(Job)
            .join(Dataset, Dataset.id == Job.dataset_id)
            .where(Dataset.name == dataset)
            .order_by(Job.id.desc())
            .limit(limit)
        ).all()
        return [JobStatus(j.id, j.kind, j.status, j.done, j.total, j.message) for j in rows]
