"""The ``ray`` embedding engine on a local Ray (two CPUs, no cluster) and a tiny random open_clip model.

Its vectors equal the local engine's, it writes the same store (so a local rerun finds nothing to
do), an interrupted run resumes (from `cli.py embed --engine ray`), and a corrupt image is
reported and skipped.
"""

from __future__ import annotations

import json
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
from models.embedder import DEMO_MODEL, ClipEmbedder, load_clip
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

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


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


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ClipEmbedder:
    import open_clip

    folder = tmp_path_factory.mktemp("configs")
    (folder / "qrels-test-tiny.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(folder)
    return load_clip("qrels-test-tiny", None, device="cpu", allow_random=True)


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


def test_ray_vectors_equal_the_local_engine_and_a_corrupt_image_is_skipped(
    shop: Database, data_dir: Path, tiny: ClipEmbedder
) -> None:
    with shop.read() as s:
        distinct = s.scalar(select(func.count(func.distinct(Item.image_sha256))))
    on_ray = embed_dataset(shop, "shop", embedder=tiny, engine="ray")
    assert [item for item, _ in on_ray.failed] == ["it3"] and "UnidentifiedImageError" in on_ray.failed[0][1]
    assert (on_ray.images_embedded, on_ray.texts_embedded, on_ray.queries_embedded) == (distinct - 1, 12, 4)
    from_ray = _stored(data_dir, tiny)
    # The store is the one `rank` and the local engine read: nothing is left to embed.
    again = embed_dataset(shop, "shop", embedder=tiny)
    assert (again.images_embedded, again.texts_embedded, again.queries_embedded) == (0, 0, 0)

    shutil.rmtree(data_dir / "embeddings")
    local = embed_dataset(shop, "shop", embedder=tiny)
    assert [item for item, _ in local.failed] == ["it3"]
    from_local = _stored(data_dir, tiny)
    for kind in KINDS:
        assert from_ray[kind].keys() == from_local[kind].keys() and from_ray[kind], kind
        keys = sorted(from_local[kind])
        ray_rows = np.stack([from_ray[kind][k] for k in keys]).astype(np.float32)
        local_rows = np.stack([from_local[kind][k] for k in keys]).astype(np.float32)
        np.testing.assert_allclose(ray_rows, local_rows, atol=2e-3)  # float16 vectors


class Interrupted(Exception):
    pass


def test_an_interrupted_ray_run_resumes_from_the_command_line(shop: Database, data_dir: Path) -> None:
    demo = embedder_for(DatasetSettings(**DEMO_SETTINGS))  # the one the CLI's --model loads
    with shop.read() as s:
        images = s.scalar(select(func.count(func.distinct(Item.image_sha256)))) - 1  # one is corrupt

    def stop_after_first_batch(stage: str, done: int, total: int) -> None:
        raise Interrupted(f"{stage}: {done} of {total}")

    with pytest.raises(Interrupted):
        embed_dataset(
            shop,
            "shop",
            embedder=demo,
            engine="ray",
            ray=RayOptions(batch_size=4),
            progress=stop_after_first_batch,
        )
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
    assert {kind: len(rows) for kind, rows in _stored(data_dir, demo).items()} == {
        "image": images,
        "text": 12,
        "query": 4,
    }
