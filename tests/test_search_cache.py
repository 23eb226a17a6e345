"""Pool search's index: built ahead, kept per ranking version, never served stale after a re-rank, a
re-import or a delete (whichever process made them), bounded in memory; and an embedding rerun
with nothing new that never loads the model.

On a tiny random open_clip model (tests/test_ranking.py's fixture)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from db.models import Item
from db.session import Database
from models.weights import weights_key
from services.core.auth import SYSTEM
from services.core.errors import NotFoundError
from services.datasets.catalog import delete_dataset
from services.datasets.settings import update_settings
from services.ingest.importer import import_bundle
from services.ranking import models as ranking_models
from services.ranking.embed import embed_dataset
from services.ranking.rank import rank_dataset
from services.ranking.search import SearchPreparing, build_search_index, search_pool
from services.ranking.search_index import clear_search_cache, kept_indexes
from tests.bundles import make_bundle
from tests.test_ranking import TINY

TEXT = "Description of item 7"


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory):
    """tests/test_ranking.py's tiny random open_clip model."""
    import json

    import open_clip

    from models.embedder import load_clip

    folder = tmp_path_factory.mktemp("configs")
    (folder / "qrels-test-tiny.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(folder)
    return load_clip("qrels-test-tiny", None, device="cpu", allow_random=True)


@pytest.fixture
def ranked(db: Database, tmp_path: Path, data_dir: Path, tiny_embedder) -> Database:
    import_bundle(db, make_bundle(tmp_path / "b", n_items=12, n_queries=4), "shop")
    embed_dataset(db, "shop", embedder=tiny_embedder)
    rank_dataset(db, "shop", k=5, embedder=tiny_embedder)
    build_search_index(db, "shop", embedder=tiny_embedder)  # what the ranking job does at its end
    return db


def search(db: Database, embedder, **kw):
    return search_pool(db, "shop", actor=SYSTEM, text=TEXT, k=5, embedder=embedder, **kw)


def folders(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "search").iterdir() if not p.name.startswith("."))


def eventually(ask, seconds: float = 120.0):
    """Ask until the background preparation is done (the page asks again the same way)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return ask()
        except SearchPreparing:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_restarted_process_opens_the_index_from_disk(
    ranked: Database, data_dir: Path, tiny_embedder
) -> None:
    hits = search(ranked, tiny_embedder)
    clear_search_cache()  # as after a restart: nothing in memory, the index on disk
    assert search(ranked, tiny_embedder) == hits
    assert len(folders(data_dir)) == 1


def test_a_rerank_elsewhere_is_never_served_stale(
    ranked: Database,
    data_dir: Path,
    tiny_embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    search(ranked, tiny_embedder)
    before = kept_indexes()
    # Another process re-ranks: this one is told nothing, it only reads the database.
    monkeypatch.setattr("services.ranking.rank.clear_search_cache", lambda: None)
    rank_dataset(ranked, "shop", k=4, embedder=tiny_embedder)
    with pytest.raises(SearchPreparing):  # the old index is not served; a new one is on its way
        search(ranked, tiny_embedder)
    hits = eventually(lambda: search(ranked, tiny_embedder))
    assert hits and kept_indexes() != before
    assert len(folders(data_dir)) == 1  # the old version was removed from disk


def test_a_reimport_and_a_delete_invalidate_the_index(
    ranked: Database,
    tmp_path: Path,
    data_dir: Path,
    tiny_embedder,
) -> None:
    assert search(ranked, tiny_embedder)
    import_bundle(ranked, make_bundle(tmp_path / "new", n_items=6, n_queries=2), "shop", replace=True)
    with ranked.read() as s:
        new_items = set(s.scalars(select(Item.id)))
    embed_dataset(ranked, "shop", embedder=tiny_embedder)
    hits = search(ranked, tiny_embedder, wait=True)
    assert hits and {h.item_id for h in hits} <= new_items
    like = search_pool(ranked, "shop", actor=SYSTEM, like_item=min(new_items), k=3, embedder=tiny_embedder)
    assert {h.item_id for h in like} <= new_items
    delete_dataset(ranked, "shop")
    with pytest.raises(NotFoundError):
        search(ranked, tiny_embedder)


def test_a_dataset_without_an_index_is_prepared_in_the_background(
    db: Database,
    tmp_path: Path,
    data_dir: Path,
    tiny_embedder,
) -> None:
    import_bundle(db, make_bundle(tmp_path / "b", n_items=12, n_queries=4), "shop")
    embed_dataset(db, "shop", embedder=tiny_embedder)
    with pytest.raises(SearchPreparing, match="Preparing search"):  # answered at once, never waits
        search(db, tiny_embedder)
    assert eventually(lambda: search(db, tiny_embedder))


def test_kept_indexes_are_bounded(
    ranked: Database,
    tmp_path: Path,
    tiny_embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QRELS_SEARCH_CACHE_DATASETS", "1")
    import_bundle(ranked, make_bundle(tmp_path / "other", n_items=6, n_queries=2), "other")
    embed_dataset(ranked, "other", embedder=tiny_embedder)
    build_search_index(ranked, "shop", embedder=tiny_embedder)
    build_search_index(ranked, "other", embedder=tiny_embedder)
    assert len(kept_indexes()) == 1


def test_an_embedding_rerun_with_nothing_new_loads_no_model(
    db: Database,
    tmp_path: Path,
    data_dir: Path,
    tiny_embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkpoint = tmp_path / "tiny.pt"
    torch.save(tiny_embedder.model.state_dict(), checkpoint)
    import_bundle(db, make_bundle(tmp_path / "b", n_items=12, n_queries=4), "shop")
    update_settings(db, "shop", {"clip_model": "qrels-test-tiny", "clip_pretrained": str(checkpoint)})
    first = embed_dataset(db, "shop")  # loads the model from the checkpoint
    assert first.texts_embedded == 12 and first.model_key == weights_key("qrels-test-tiny", str(checkpoint))

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded for a rerun with nothing new")

    monkeypatch.setattr(ranking_models, "_embedders", {})  # a new process: no model loaded
    monkeypatch.setattr("models.embedder.load_clip", no_loading)
    again = embed_dataset(db, "shop")
    assert (again.images_embedded, again.texts_embedded, again.queries_embedded) == (0, 0, 0)
    assert again.images_stored_before == first.images_embedded and again.model_key == first.model_key
