"""The ``ray`` embedding engine on a local Ray (two CPUs, no cluster) and the small demo model.

An interrupted Ray run resumes (from `cli.py embed --engine ray`), a corrupt image is reported and
skipped, the vectors equal the local engine's, and they are in the same store (a local rerun finds
nothing to do). Two Ray runs in all: a Ray pipeline takes seconds to start.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

pytest.importorskip("ray.data", reason="the Ray tests need `pip install -r requirements-ray.txt`")

from typer.testing import CliRunner

from cli.main import app
from db.models import Item
from db.session import Database
from models.embedder import DEMO_MODEL, ClipEmbedder
from models.store import KINDS, EmbeddingStore
from services.core.media import MediaStore
from services.datasets.settings import DatasetSettings
from services.ingest.importer import import_bundle
from services.ranking.embed import embed_dataset
from services.ranking.models import DEMO_SETTINGS, embedder_for
from services.ranking.ray_engine import RayOptions
from tests.bundles import make_bundle

# A local Ray per module, on SQLite only (the store and the engines are what is tested, not the database).
pytestmark = [pytest.mark.ray, pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


@pytest.fixture
def shop(db: Database, tmp_path: Path, data_dir: Path) -> Database:
    import_bundle(db, make_bundle(tmp_path / "b", n_items=12, n_queries=4), "shop")
    with db.read() as s:
        victim = s.scalar(select(Item).where(Item.ext_id == "it3"))
    # The stored original went bad on disk after import.
    MediaStore(data_dir).original_path(victim.image_sha256, victim.image_ext).write_bytes(b"not an image")
    return db


def _stored(data_dir: Path, embedder: ClipEmbedder) -> dict[str, dict[str, np.ndarray]]:
    store = EmbeddingStore(data_dir / "embeddings", embedder.model_key)
    return {kind: dict(zip(keys := store.keys(kind), store.get(kind, keys), strict=True)) for kind in KINDS}


class Interrupted(Exception):
    pass


def test_a_ray_run_resumes_skips_a_corrupt_image_and_equals_the_local_engine(
    shop: Database, data_dir: Path
) -> None:
    demo = embedder_for(DatasetSettings(**DEMO_SETTINGS))  # the one the CLI's --model loads
    with shop.read() as s:
        images = s.scalar(select(func.count(func.distinct(Item.image_sha256)))) - 1  # one is corrupt

    def stop_after_first_batch(stage: str, done: int, total: int) -> None:
        raise Interrupted(f"{stage}: {done} of {total}")

    small = RayOptions(batch_size=4)
    with pytest.raises(Interrupted):
        embed_dataset(shop, "shop", embedder=demo, engine="ray", ray=small, progress=stop_after_first_batch)
    partial = {kind: len(rows) for kind, rows in _stored(data_dir, demo).items()}
    assert 0 < sum(partial.values()) < images + 12 + 4  # what had arrived is stored, the rest is not

    args = ["embed", "-d", "shop", "--model", DEMO_MODEL, "--engine", "ray", "--batch-size", "4"]
    resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert (
        f"embedded {images - partial['image']} images ({partial['image']} stored before), "
        f"{12 - partial['text']} item texts, {4 - partial['query']} queries with {demo.model_key} (ray engine)"
    ) in resumed.output
    assert "warning: item it3: image skipped: UnidentifiedImageError" in resumed.output
    from_ray = _stored(data_dir, demo)
    assert {kind: len(rows) for kind, rows in from_ray.items()} == {"image": images, "text": 12, "query": 4}
    # The store is the one `rank` and the local engine read: nothing is left to embed.
    again = embed_dataset(shop, "shop", embedder=demo)
    assert (again.images_embedded, again.texts_embedded, again.queries_embedded) == (0, 0, 0)

    shutil.rmtree(data_dir / "embeddings")
    local = embed_dataset(shop, "shop", embedder=demo)
    assert [item for item, _ in local.failed] == ["it3"]
    from_local = _stored(data_dir, demo)
    for kind in KINDS:
        assert from_ray[kind].keys() == from_local[kind].keys(), kind
        keys = sorted(from_local[kind])
        ray_rows = np.stack([from_ray[kind][k] for k in keys]).astype(np.float32)
        local_rows = np.stack([from_local[kind][k] for k in keys]).astype(np.float32)
        np.testing.assert_allclose(ray_rows, local_rows, atol=2e-3)  # float16 vectors
