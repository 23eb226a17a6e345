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

from db.session import Database
from models.store import EmbeddingStore
from models.weights import DEMO_CHECKPOINT, DEMO_MODEL, ModelLoadError, weights_key
from services.core.auth import public
from services.core.config import load_settings
from services.core.errors import ModelUnavailable, ValidationError
from services.core.lookups import dataset_or_404
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


def choose_model(
    settings: DatasetSettings, model: str | None = None, pretrained: str | None = None
) -> tuple[str, str]:
    """(model, pretrained) for one run: a choice made for it (the CLI's ``--model``/``--pretrained``)
    over the dataset's :func:`model_for`.

    ``pretrained`` alone keeps the dataset's model; ``model`` alone keeps the dataset's weights if
    they are that model's (the demo model's are its shipped checkpoint).

    Raises:
        ValidationError: a model other than the dataset's without ``pretrained``.
    """
    base_model, base_pretrained = model_for(settings)
    model = model or base_model
    if not pretrained:
        if model == base_model:
            pretrained = base_pretrained
        elif model == DEMO_MODEL:
            pretrained = "demo"
        else:
            raise ValidationError(
                f"model {model!r} needs its weights too: give --pretrained with an open_clip tag of "
                f"{model!r} or a checkpoint file (the dataset's {base_pretrained!r} belongs to {base_model!r})"
            )
    if model == DEMO_MODEL and pretrained == "demo":
        pretrained = str(DEMO_CHECKPOINT)
    return model, pretrained


def check_model_choice(settings: DatasetSettings) -> None:
    """Check, without loading weights, that a dataset's model and weights name something loadable.

    Raises:
        ValidationError: an unknown model, a tag that is not one of the model's, or a missing file.
    """
    try:
        from models.embedder import check_weights

        check_weights(*model_for(settings))
    except ModelLoadError as e:
        raise ValidationError(
            f"{e} (set clip_model and clip_pretrained together: the model and one of its tags or a "
            "checkpoint file)"
        ) from e


_embedders: dict[tuple[str, str], ClipEmbedder] = {}
_embedders_lock = threading.Lock()


def embedder_for(
    settings: DatasetSettings, model: str | None = None, pretrained: str | None = None
) -> ClipEmbedder:
    """The process-wide embedder for a dataset's model, or for ``model``/``pretrained`` when given
    (:func:`choose_model`); each is loaded once."""
    from models.embedder import load_clip

    key = choose_model(settings, model, pretrained) if model or pretrained else model_for(settings)
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


@public("loads the model a CLI run names; the CLI runs as the system")
def chosen_embedder(
    db: Database, dataset: str, model: str | None = None, pretrained: str | None = None
) -> ClipEmbedder | None:
    """The embedder of a run's own model choice for ``dataset`` (:func:`choose_model`), or ``None``
    when neither is given (the services then load the dataset's own model, only if they need it).

    Raises:
        NotFoundError: no such dataset.
        ValidationError: a model without its weights.
        ModelUnavailable: the weights cannot be loaded here.
    """
    if not model and not pretrained:
        return None
    with db.read() as s:
        settings = DatasetSettings.from_stored(dataset_or_404(s, dataset).settings)
    return embedder_for(settings, model, pretrained)
