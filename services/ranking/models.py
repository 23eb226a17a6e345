"""The CLIP model of a dataset: which model and weights, the process-wide embedder, its store.

A dataset's own settings name its model; ``QRELS_CLIP_MODEL`` is the model of a dataset that
names none, and ``QRELS_CLIP_PRETRAINED`` overrides every dataset's weights (both read in
:mod:`services.core.config`). Embeddings live in the on-disk :class:`models.store.EmbeddingStore`,
keyed by content, so reruns embed only what is new.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from models.store import EmbeddingStore
from models.weights import DEMO_CHECKPOINT, DEMO_MODEL, ModelLoadError, weights_key
from services.core.config import load_settings
from services.core.errors import ModelUnavailable
from services.datasets.settings import DatasetSettings

if TYPE_CHECKING:  # torch and open_clip load only with a model (models.embedder imports them)
    from models.embedder import ClipEmbedder

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
# What a demo dataset is set to: the demo model with its shipped checkpoint.
DEMO_SETTINGS = {"clip_model": DEMO_MODEL, "clip_pretrained": "demo"}


def model_for(settings: DatasetSettings) -> tuple[str, str]:
    """(model, pretrained) for a dataset: its own settings, then the environment, then defaults."""
    config = load_settings()
    model = settings.clip_model or config.clip_model or DEFAULT_MODEL
    pretrained = config.clip_pretrained or settings.clip_pretrained or DEFAULT_PRETRAINED
    if model == DEMO_MODEL and pretrained == "demo":
        pretrained = str(DEMO_CHECKPOINT)
    return model, pretrained


_embedders: dict[tuple[str, str], ClipEmbedder] = {}
_embedders_lock = threading.Lock()


def embedder_for(settings: DatasetSettings) -> ClipEmbedder:
    """The process-wide embedder for a dataset's model (loaded once)."""
    from models.embedder import load_clip

    key = model_for(settings)
    with _embedders_lock:
        if key not in _embedders:
            try:
                _embedders[key] = load_clip(*key)
            except ModelLoadError as e:
                raise ModelUnavailable(str(e)) from e
        return _embedders[key]


def loaded_embedder(settings: DatasetSettings) -> ClipEmbedder | None:
    """The dataset's embedder if this process has loaded it already; None otherwise. Never waits
    (not even for a load in progress in another thread)."""
    return _embedders.get(model_for(settings))  # one dict read: atomic, no lock needed


def model_key_for(settings: DatasetSettings) -> str | None:
    """The store key of the dataset's model without loading it; None where only loading can tell."""
    return weights_key(*model_for(settings))


def store_for(embedder: ClipEmbedder | str, data_dir: Path | None = None) -> EmbeddingStore:
    """The embedding store of ``embedder``'s model (or of a model key) under the data folder
    (``QRELS_DATA_DIR``)."""
    key = embedder if isinstance(embedder, str) else embedder.model_key
    return EmbeddingStore((data_dir or load_settings().data_dir) / "embeddings", key)
