"""Ranking service: embed (resumable, corrupt images skipped), rank with four rankers, pool with
provenance, composed queries, pool search — on a tiny random open_clip model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Candidate, Item, Query, RankerRun
from db.session import Database
from models.embedder import load_clip
from services.core.auth import SYSTEM
from services.core.errors import PermissionDenied, ValidationError
from services.core.media import MediaStore
from services.datasets.settings import DatasetSettings
from services.ingest.importer import import_bundle
from services.ranking.embed import embed_dataset
from services.ranking.jobs import start_ranking_job
from services.ranking.models import DEMO_SETTINGS, model_for
from services.ranking.rank import rank_dataset
from services.ranking.search import build_search_index, clear_search_cache, search_pool
from tests.bundles import make_bundle

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory):
    import open_clip

    folder = tmp_path_factory.mktemp("configs")
    (folder / "qrels-test-tiny.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(folder)
    return load_clip("qrels-test-tiny", None, device="cpu", allow_random=True)


@pytest.fixture
def shop(db: Database, tmp_path: Path, data_dir: Path) -> Database:
    import_bundle(db, make_bundle(tmp_path / "b", n_items=12, n_queries=4), "shop")
    return db


def test_embed_is_resumable_and_skips_corrupt_images(shop: Database, data_dir: Path, tiny_embedder) -> None:
    with shop.read() as s:
        victim = s.scalar(select(Item).where(Item.ext_id == "it3"))
        distinct = s.scalar(select(func.count(func.distinct(Item.image_sha256))))  # images are shared
    # The stored original went bad on disk after import: it must be reported, not crash the job.
    MediaStore(data_dir).original_path(victim.image_sha256, victim.image_ext).write_bytes(b"not an image")
    first = embed_dataset(shop, "shop", embedder=tiny_embedder)
    assert first.images_embedded == distinct - 1 and [e for e, _ in first.failed] == ["it3"]
    assert first.texts_embedded == 12 and first.queries_embedded == 4
    again = embed_dataset(shop, "shop", embedder=tiny_embedder)
    assert (again.images_embedded, again.texts_embedded, again.queries_embedded) == (0, 0, 0)
    assert again.images_stored_before == distinct - 1


def test_rank_writes_each_ranker_and_a_pooled_run_with_provenance(shop: Database, tiny_embedder) -> None:
    embed_dataset(shop, "shop", embedder=tiny_embedder)
    report = rank_dataset(shop, "shop", k=5, embedder=tiny_embedder)
    assert set(report.runs) == {"clip_image", "clip_text", "bm25", "hybrid", "pooled"}
    with shop.read() as s:
        runs = {r.name: r.id for r in s.scalars(select(RankerRun))}
        per_ranker = {
            (name, c.query_id, c.item_id): (c.rank, c.score)
            for name, run_id in runs.items()
            if name != "pooled"
            for c in s.scalars(select(Candidate).where(Candidate.run_id == run_id))
        }
        pooled = s.scalars(select(Candidate).where(Candidate.run_id == runs["pooled"])).all()
        q1 = s.scalar(select(Query).where(Query.ext_id == "q1"))
        ref_item = q1.refs[0].item_id
    assert all(rank <= 5 for rank, _ in per_ranker.values())
    for c in pooled:
        assert c.rankers, "every pooled candidate names its rankers"
        for name, source in c.rankers.items():
            assert per_ranker[(name, c.query_id, c.item_id)][0] == source["rank"]
    for qid in {c.query_id for c in pooled}:
        ranks = sorted(c.rank for c in pooled if c.query_id == qid)
        assert ranks == list(range(1, len(ranks) + 1))
        items = {c.item_id for c in pooled if c.query_id == qid}
        union = {i for (name, q, i) in per_ranker if q == qid}
        assert items == union  # the pool is the union of the rankers' top-k
    # q1 is composed with it1 as its reference: the reference is never its own candidate.
    assert ref_item not in {c.item_id for c in pooled if c.query_id == q1.id}


def test_rerank_replaces_runs(shop: Database, tiny_embedder) -> None:
    embed_dataset(shop, "shop", embedder=tiny_embedder)
    rank_dataset(shop, "shop", k=3, embedder=tiny_embedder)
    rank_dataset(shop, "shop", k=4, embedder=tiny_embedder)
    with shop.read() as s:
        assert s.scalar(select(func.count()).select_from(RankerRun)) == 5
        assert s.scalar(select(func.max(Candidate.rank)).join(RankerRun).where(RankerRun.name == "bm25")) <= 4


def test_rank_needs_embeddings_and_an_admin(shop: Database, tiny_embedder, users) -> None:
    with pytest.raises(ValidationError, match="not embedded yet"):
        rank_dataset(shop, "shop", embedder=tiny_embedder)
    with pytest.raises(PermissionDenied):
        rank_dataset(shop, "shop", embedder=tiny_embedder, actor=users["ann1"])
    with pytest.raises(PermissionDenied):
        start_ranking_job(shop, "shop", actor=users["reviewer"])


def test_pool_search_by_text_and_like_this(shop: Database, tiny_embedder) -> None:
    embed_dataset(shop, "shop", embedder=tiny_embedder)
    build_search_index(shop, "shop", embedder=tiny_embedder)  # as the ranking job does at its end
    clear_search_cache()  # a restarted process: opened from disk
    hits = search_pool(shop, "shop", actor=SYSTEM, text="Description of item 7", k=12, embedder=tiny_embedder)
    with shop.read() as s:
        it7 = s.scalar(select(Item.id).where(Item.ext_id == "it7"))
    assert 0 < len(hits) <= 12 and all(h.rankers for h in hits)
    # The CLIP rankers are random here; BM25 finds the exact words, and the fusion says so.
    (hit,) = [h for h in hits if h.item_id == it7]
    assert hit.rankers["bm25"]["rank"] == 1
    assert (
        len(
            search_pool(shop, "shop", actor=SYSTEM, text="Description of item 7", k=5, embedder=tiny_embedder)
        )
        == 5
    )
    like = search_pool(shop, "shop", actor=SYSTEM, like_item=it7, k=5, embedder=tiny_embedder)
    assert like and it7 not in [h.item_id for h in like]
    with pytest.raises(ValidationError):
        search_pool(shop, "shop", actor=SYSTEM, text="  ", embedder=tiny_embedder)


def test_model_choice_follows_dataset_then_environment(monkeypatch) -> None:
    assert model_for(DatasetSettings()) == ("ViT-B-32", "laion2b_s34b_b79k")
    model, pretrained = model_for(DatasetSettings(**DEMO_SETTINGS))
    assert model == "qrels-demo-clip" and pretrained.endswith("qrels-demo-clip.pt")
    monkeypatch.setenv("QRELS_CLIP_PRETRAINED", "/models/local.pt")
    assert model_for(DatasetSettings())[1] == "/models/local.pt"
    monkeypatch.setenv("QRELS_CLIP_MODEL", "RN50")
    assert model_for(DatasetSettings())[0] == "RN50"  # the environment's model serves datasets that name none
    assert model_for(DatasetSettings(clip_model="ViT-L-14"))[0] == "ViT-L-14"


def test_evidence_is_standardised_and_bm25_within_each_item_language() -> None:
    import numpy as np

    from services.ranking.hybrid import evidence_sum, language_groups

    groups = language_groups(["en", "en", "en", "de", "de", "de"])
    assert [g.tolist() for g in groups] == [[3, 4, 5], [0, 1, 2]]
    # An English query: BM25 matches one English item and, on a word both languages share, one German item.
    lexical = np.array([[6.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    alone = evidence_sum({"bm25": lexical}, weights={"bm25": 1.0}, groups=groups)[0]
    assert (
        alone[3] == pytest.approx(alone[0], rel=1e-4) and alone[3] > 1
    )  # the best German match counts as much
    dense = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    both = evidence_sum(
        {"bm25": lexical, "clip_text": dense}, weights={"bm25": 0.5, "clip_text": 1.0}, groups=groups
    )
    z_dense = (dense - dense.mean()) / (dense.std() + 1e-6)
    assert both == pytest.approx(0.5 * alone[None, :] + z_dense, rel=1e-4)
    with pytest.raises(ValueError):
        evidence_sum({})
