"""Embedding on Ray Data: the embedder's per-batch functions as a distributed pipeline.

The pipeline has two stages over rows ``(kind, key, source)``:

1. read: Ray tasks decode the image files (``source`` is a path) with the model's
   :class:`~models.images.ImagePreprocessor` into uint8 pixels; an unreadable file becomes a row
   with its reason in ``error`` and no pixels. Text rows (``source`` is the text) pass through.
2. embed: a ``map_batches`` stage of :class:`EmbedActor`, a callable class that holds the model
   (one actor per GPU, or one on CPUs) and calls the same
   :meth:`~models.embedder.ClipEmbedder.embed_image_tensors` and
   :meth:`~models.embedder.ClipEmbedder.embed_texts` as the local engine.

The driver's loaded model (module, tokenizer and ``model_key``) goes to the actors through the
object store, so the vectors come from exactly the weights the driver would use, and no worker
needs the weights cached or the hub reachable. Results stream back to the driver
(:func:`embed_on_ray` yields them batch by batch), which writes them where it likes.

Image paths are read where they are decoded: on a cluster the data folder must be mounted at the
same path on every node.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.images import ImagePreprocessor

if TYPE_CHECKING:
    from models.embedder import ClipEmbedder

# open_clip (through models.embedder) is imported only where a model is: the read stage's workers
# then start without it, which on a small machine is most of their start-up.

__all__ = ["RAY_MISSING", "EmbedActor", "Job", "RayBatch", "embed_on_ray", "ray_available", "ray_session"]

logger = logging.getLogger(__name__)

IMAGE = "image"
RAY_MISSING = (
    "the ray engine needs Ray, which is not installed here: run "
    "`.venv/bin/python -m pip install -r requirements-ray.txt` (or use --engine local)"
)
# What the project root ships to a remote cluster's workers as their working directory.
_ROOT = Path(__file__).resolve().parent.parent
_EXCLUDES = [
    ".venv/",
    "data/",
    ".git/",
    "tests/",
    "bench/",
    "**/__pycache__/",
    ".pytest_cache/",
    ".ruff_cache/",
]


@dataclass(frozen=True)
class Job:
    """One thing to embed: ``kind`` is ``image`` (``source`` a file path) or a text kind (``source`` the text)."""

    kind: str
    key: str
    source: str


@dataclass(frozen=True)
class RayBatch:
    """Vectors of one finished batch: row ``i`` of ``vectors`` for ``keys[i]`` of kind ``kinds[i]``.

    Rows whose ``errors[i]`` is not empty were not embedded (their vector is zeros).
    """

    kinds: list[str]
    keys: list[str]
    vectors: np.ndarray
    errors: list[str]


def ray_available() -> bool:
    """Whether Ray (with Ray Data) can be imported here."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[None]:
    """Connect to Ray for the duration: the session already open, else ``address``, else a local Ray.

    Args:
        address: a running cluster (``ray://host:10001``, ``host:6379`` or ``auto``); ``None``
            connects to ``RAY_ADDRESS`` when set, else starts a local Ray on this machine.
        num_cpus: CPUs of a local Ray (default: all).

    A Ray this call started is shut down at the end; one that was running is left running.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    remote = bool(address or os.environ.get("RAY_ADDRESS"))
    runtime_env = {"working_dir": str(_ROOT), "excludes": _EXCLUDES} if remote else None
    ray.init(
        address=address,
        num_cpus=None if remote else num_cpus,
        include_dashboard=False if not remote else None,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env=runtime_env,
    )
    try:
        yield
    finally:
        ray.shutdown()


def _quiet_ray_data() -> None:
    """No Ray Data progress bars or per-dataset log lines on the terminal: the caller reports progress."""
    import ray.data

    for name in ("ray", "ray.data", "ray._private"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Ray Data's own settings, on first use
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def decode_images(batch: dict[str, np.ndarray], preprocess: ImagePreprocessor) -> dict[str, Any]:
    """The read stage: decode the image rows of ``batch`` into uint8 pixel bytes, noting failures."""
    pixels: list[bytes] = []
    errors: list[str] = []
    for kind, source in zip(batch["kind"], batch["source"], strict=True):
        if kind != IMAGE:
            pixels.append(b"")
            errors.append("")
            continue
        try:
            pixels.append(preprocess(Path(str(source))).tobytes())
            errors.append("")
        except Exception as e:
            # As the local engine: one bad file never ends the job; PIL raises many types here.
            pixels.append(b"")
            errors.append(f"{type(e).__name__}: {e}")
    return {
        "kind": batch["kind"],
        "key": batch["key"],
        "source": np.array(
            ["" if k == IMAGE else s for k, s in zip(batch["kind"], batch["source"], strict=True)]
        ),
        "pixels": np.array(pixels, dtype=object),
        "error": np.array(errors),
    }


class EmbedActor:
    """The embed stage: one loaded model per actor, called on each batch of decoded rows.

    Args:
        payload: ``[ref]``, an object-store reference to :func:`pack_embedder`'s bytes (in a list so
            Ray hands the reference, not the bytes, to the constructor).
    """

    def __init__(self, payload: list[Any]) -> None:
        import ray
        import torch

        from models.embedder import ClipEmbedder, resolve_device

        device = resolve_device("auto")  # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU, if any
        state = torch.load(io.BytesIO(ray.get(payload[0])), map_location=device, weights_only=False)
        self.embedder = ClipEmbedder(
            state["model"], state["tokenizer"], device=device, model_key=state["model_key"]
        )
        pre = self.embedder.preprocessor
        self.shape = (3, pre.height, pre.width)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        kinds = [str(k) for k in batch["kind"]]
        errors = [str(e) for e in batch["error"]]
        vectors = np.zeros((len(kinds), self.embedder.dim), dtype=np.float16)
        images = [i for i, k in enumerate(kinds) if k == IMAGE and not errors[i]]
        if images:
            pixels = np.stack(
                [np.frombuffer(batch["pixels"][i], dtype=np.uint8).reshape(self.shape) for i in images]
            )
            vectors[images] = self.embedder.embed_image_tensors(pixels)
        texts = [i for i, k in enumerate(kinds) if k != IMAGE]
        if texts:
            vectors[texts] = self.embedder.embed_texts([str(batch["source"][i]) for i in texts])
        return {"kind": batch["kind"], "key": batch["key"], "vector": vectors, "error": batch["error"]}


def pack_embedder(embedder: ClipEmbedder) -> bytes:
    """The model, tokenizer and model key as bytes for the actors (tensors load on any device)."""
    import torch

    buffer = io.BytesIO()
    torch.save(
        {"model": embedder.model, "tokenizer": embedder.tokenizer, "model_key": embedder.model_key}, buffer
    )
    return buffer.getvalue()


def embed_on_ray(
    embedder: ClipEmbedder,
    jobs: Sequence[Job],
    *,
    batch_size: int | None = None,
    actors: int | None = None,
) -> Iterator[RayBatch]:
    """Embed ``jobs`` on the connected Ray (see :func:`ray_session`), yielding batches as they finish.

    Args:
        embedder: the loaded model; its weights are shipped to the actors.
        jobs: what to embed; images are decoded in the read stage.
        batch_size: rows per embed call (default 256 with GPUs in the cluster, else 64).
        actors: model actors (default one per GPU of the cluster, else one).

    Yields:
        :class:`RayBatch` per finished batch, in no particular order.
    """
    import ray
    import ray.data

    if not jobs:
        return
    _quiet_ray_data()
    gpus = int(ray.cluster_resources().get("GPU", 0))
    batch_size = batch_size or (256 if gpus else 64)
    actors = actors or max(1, gpus)
    payload = ray.put(pack_embedder(embedder))
    rows = [{"kind": j.kind, "key": j.key, "source": j.source} for j in jobs]
    blocks = max(1, min(len(rows) // batch_size, 1000))
    pre = embedder.preprocessor
    with warnings.catch_warnings():
        # max_restarts=0 is how Ray Data's own code says to turn actor restarts off (it warns that
        # extra remote args are deprecated): a lost actor fails the run, and a rerun resumes it.
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = (
            ray.data.from_items(rows, override_num_blocks=blocks)
            .map_batches(
                decode_images,
                fn_kwargs={"preprocess": pre},
                batch_size=batch_size,
                num_cpus=1,
                # The decoded batch's memory; also keeps this stage in its own tasks, not fused into the actors.
                memory=2 * batch_size * 3 * pre.height * pre.width,
            )
            .map_batches(
                EmbedActor,
                fn_constructor_kwargs={"payload": [payload]},
                batch_size=batch_size,
                concurrency=actors,
                num_gpus=1 if gpus else 0,
                num_cpus=1,
                max_restarts=0,
            )
        )
    logger.info(
        "embedding %d rows on Ray: %d actor(s), %d GPU(s), batch %d", len(rows), actors, gpus, batch_size
    )
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        yield RayBatch(
            kinds=[str(k) for k in batch["kind"]],
            keys=[str(k) for k in batch["key"]],
            vectors=np.asarray(batch["vector"], dtype=np.float16),
            errors=[str(e) for e in batch["error"]],
        )
