"""open_clip embedder: texts and image files to float16, L2-normalised vectors.

Every model, the bundled demo model included, loads through :func:`load_clip`, which registers the
JSON configs in ``models/configs/`` with open_clip first. Weights come from an open_clip
``pretrained`` tag or a local checkpoint file; when they cannot be loaded the caller gets a
:class:`ModelLoadError` that says how to point at a local file, never a model with random weights.

Image files are decoded in :class:`torch.utils.data.DataLoader` workers (:mod:`models.images`:
PIL, JPEG draft mode near the model's input size) into uint8 tensors; normalisation happens
batched on the device, so workers ship a quarter of the bytes and the device does the arithmetic.
Unreadable files are reported by id and skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from torch.nn import functional
from torch.utils.data import DataLoader

from models.hub import hub_offline, weights_source
from models.images import Failure, ImageFiles, ImagePreprocessor, collate, worker_init
from models.weights import (
    CHECKPOINT_SUFFIXES,
    DEMO_CHECKPOINT,
    DEMO_MODEL,
    ModelLoadError,
    checkpoint_tag,
    safe_name,
)

__all__ = [
    "CONFIG_DIR",
    "DEMO_CHECKPOINT",
    "DEMO_MODEL",
    "ClipEmbedder",
    "EmbedResult",
    "ModelLoadError",
    "check_weights",
    "load_clip",
    "register_model_configs",
    "resolve_device",
]

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
_registered: set[Path] = set()


@dataclass(frozen=True)
class EmbedResult:
    """What :meth:`ClipEmbedder.embed_image_files` produced.

    Attributes:
        ids: ids of the embedded images, in input order, failures left out.
        vectors: float16 ``[len(ids), dim]``, L2-normalised, row ``i`` for ``ids[i]``.
        failed: ``(id, reason)`` for every file that could not be read or decoded.
    """

    ids: list[str]
    vectors: np.ndarray
    failed: list[Failure] = field(default_factory=list)


def register_model_configs(config_dir: Path = CONFIG_DIR) -> None:
    """Register the JSON model configs in ``config_dir`` with open_clip (once per folder).

    Args:
        config_dir: folder of open_clip model configs (``<model name>.json``).
    """
    config_dir = Path(config_dir).resolve()
    if config_dir in _registered:
        return
    open_clip.add_model_config(config_dir)
    _registered.add(config_dir)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into CUDA, then MPS, then CPU; pass anything else to :class:`torch.device`.

    Raises:
        ModelLoadError: the named device does not exist here.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as e:
        raise ModelLoadError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but CUDA is not available; use auto or cpu")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but MPS is not available; use auto or cpu")
    return resolved


def _looks_like_path(pretrained: str) -> bool:
    return os.sep in pretrained or "/" in pretrained or pretrained.lower().endswith(CHECKPOINT_SUFFIXES)


def _how_to_fix(model: str) -> str:
    return (
        "download the checkpoint on a machine with internet access and point at the file with "
        "QRELS_CLIP_PRETRAINED=/path/to/ckpt.pt or the dataset's CLIP checkpoint setting; "
        f"for the bundled demo model use model {DEMO_MODEL!r} with pretrained {str(DEMO_CHECKPOINT)!r}"
    )


def _model_key(model: str, pretrained: str | None, checkpoint: Path | None, weights: torch.nn.Module) -> str:
    # Keep in step with models.weights.weights_key, which names these keys without loading.
    if checkpoint is not None:
        tag = checkpoint_tag(checkpoint)
    elif pretrained is not None:
        tag = safe_name(pretrained)
    else:
        # Random weights differ on every load: key them by their values so stored vectors of one
        # random model are never served for another.
        digest = hashlib.sha256()
        for name, tensor in sorted(weights.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        tag = f"random-{digest.hexdigest()[:16]}"
    return f"{safe_name(model)}__{tag}"


def load_clip(
    model: str,
    pretrained: str | None,
    *,
    device: str | torch.device = "auto",
    allow_random: bool = False,
) -> ClipEmbedder:
    """Load an open_clip model with its weights and wrap it as a :class:`ClipEmbedder`.

    Args:
        model: an open_clip model name (``"ViT-B-32"``, ``"qrels-demo-clip"``) or an
            ``hf-hub:``/``local-dir:`` identifier.
        pretrained: an open_clip tag (``"laion2b_s34b_b79k"``) or a local checkpoint path.
            ``None`` means random weights and needs ``allow_random=True``.
        device: ``"auto"`` (CUDA, then MPS, then CPU), or a torch device string.
        allow_random: accept ``pretrained=None``; for tests only.

    Returns:
        The embedder, in eval mode on ``device``.

    Raises:
        ModelLoadError: the model is unknown, the tag is unknown, the checkpoint file is missing,
            or the weights could not be downloaded or loaded. The message names the model and
            tag and says how to point at a local checkpoint.
    """
    register_model_configs()
    torch_device = resolve_device(device)
    where = f"model {model!r} with pretrained {pretrained!r}"
    schema = model.split(":", 1)[0] + ":" if model.startswith(("hf-hub:", "local-dir:")) else None
    checkpoint = check_weights(model, pretrained, allow_random=allow_random)

    # A tag's weights: from the local cache with the hub offline, else fail at once without a network.
    source = weights_source(model, pretrained) if checkpoint is None and pretrained and not schema else None
    if source is not None and source.problem:
        raise ModelLoadError(f"cannot load {where}: {source.problem}; {_how_to_fix(model)}")
    try:
        with hub_offline(source is not None and source.cached):
            clip, _, _ = open_clip.create_model_and_transforms(
                model,
                pretrained=str(checkpoint) if checkpoint is not None else pretrained,
                device=torch_device,
                require_pretrained=pretrained is not None or schema is not None,
            )
        tokenizer = open_clip.get_tokenizer(model)
    except ModelLoadError:
        raise
    except Exception as e:
        # open_clip and huggingface_hub raise RuntimeError, OSError, ValueError or their own
        # HTTP errors when offline; all mean the same to the user: these weights are not here.
        raise ModelLoadError(f"cannot load {where}: {e}; {_how_to_fix(model)}") from e
    clip.eval()
    key = _model_key(model, pretrained, checkpoint, clip)
    logger.info("loaded CLIP %s on %s (key %s)", where, torch_device, key)
    return ClipEmbedder(clip, tokenizer, device=torch_device, model_key=key)


def check_weights(model: str, pretrained: str | None, *, allow_random: bool = False) -> Path | None:
    """Check that ``model`` and ``pretrained`` name something loadable, without loading it.

    Args:
        model: as for :func:`load_clip`.
        pretrained: as for :func:`load_clip`.
        allow_random: accept ``pretrained=None``.

    Returns:
        The checkpoint file when ``pretrained`` is one, else ``None``.

    Raises:
        ModelLoadError: no weights given, an unknown model, a missing checkpoint file, or a tag
            that is not one of the model's (the message lists its tags).
    """
    register_model_configs()
    where = f"model {model!r} with pretrained {pretrained!r}"
    schema = model.split(":", 1)[0] + ":" if model.startswith(("hf-hub:", "local-dir:")) else None
    if pretrained is None and schema is None:
        if not allow_random:
            raise ModelLoadError(
                f"no weights given for {where}: pass an open_clip tag or a checkpoint path; "
                f"{_how_to_fix(model)}"
            )
    elif pretrained is not None and schema is None:
        if model.replace("/", "-") not in open_clip.list_models():
            raise ModelLoadError(
                f"unknown CLIP {where}: open_clip has no config named {model!r}; use one of "
                f"open_clip.list_models() (e.g. 'ViT-B-32') or {DEMO_MODEL!r}"
            )
        candidate = Path(pretrained).expanduser()
        if candidate.is_file():
            return candidate.resolve()
        if _looks_like_path(pretrained):
            raise ModelLoadError(
                f"cannot load {where}: checkpoint file {str(candidate)!r} does not exist; {_how_to_fix(model)}"
            )
        if not open_clip.get_pretrained_cfg(model, pretrained):
            known = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
            raise ModelLoadError(
                f"cannot load {where}: {pretrained!r} is neither an open_clip tag for this model "
                f"(known tags: {known}) nor an existing file; {_how_to_fix(model)}"
            )
    return None


class ClipEmbedder:
    """A loaded open_clip model that turns texts and images into unit float16 vectors.

    Build it with :func:`load_clip`.

    Attributes:
        model_key: filesystem-safe id of model + weights, for the embedding store.
        dim: the embedding dimension.
        device: where the model runs.
        preprocessor: decodes an image file as the model's eval transform would (uint8).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Callable[..., torch.Tensor],
        *,
        device: torch.device,
        model_key: str,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.model_key = model_key
        cfg = open_clip.get_model_preprocess_cfg(model)
        self.preprocessor = ImagePreprocessor(cfg)
        mean = torch.tensor(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN), dtype=torch.float32)
        std = torch.tensor(cfg.get("std", open_clip.OPENAI_DATASET_STD), dtype=torch.float32)
        # Folding /255 into the scale lets uint8 pixels be normalised in one fused multiply-add.
        self._scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(device)
        self._shift = (-mean / std).view(1, 3, 1, 1).to(device)
        with torch.inference_mode():
            probe = self.model.encode_text(self.tokenizer(["probe"]).to(device))
        self.dim = int(probe.shape[-1])

    def default_batch_size(self) -> int:
        """Images per batch sized for the device: 256 on CUDA, 64 elsewhere."""
        return 256 if self.device.type == "cuda" else 64

    def _autocast(self) -> Any:
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast(self.device.type, enabled=False)

    @staticmethod
    def _finish(features: torch.Tensor) -> np.ndarray:
        return functional.normalize(features.float(), dim=-1).to(torch.float16).cpu().numpy()

    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Embed texts (queries, captions, item titles).

        Args:
            texts: the texts; each is truncated to the model's context length by its tokenizer.
            batch_size: texts per forward pass.

        Returns:
            float16 ``[len(texts), dim]``, L2-normalised rows.
        """
        out = np.empty((len(texts), self.dim), dtype=np.float16)
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
                out[start : start + len(tokens)] = self._finish(self.model.encode_text(tokens))
        return out

    def embed_image_tensors(self, pixels: torch.Tensor | np.ndarray) -> np.ndarray:
        """Embed one batch of preprocessed images.

        Args:
            pixels: ``[B, 3, H, W]``; uint8 (as :class:`ImagePreprocessor` makes them, normalised
                here on the device) or float (already normalised, as open_clip's transform makes them).

        Returns:
            float16 ``[B, dim]``, L2-normalised rows.
        """
        tensor = torch.as_tensor(pixels)
        if tensor.ndim != 4 or tensor.shape[1] != 3:
            raise ValueError(f"pixels must be [B, 3, H, W], got shape {tuple(tensor.shape)}")
        if len(tensor) == 0:
            return np.empty((0, self.dim), dtype=np.float16)
        tensor = tensor.to(self.device, non_blocking=True)
        with torch.inference_mode(), self._autocast():
            if tensor.dtype == torch.uint8:
                tensor = torch.addcmul(self._shift, tensor.float(), self._scale)
            return self._finish(self.model.encode_image(tensor))

    def default_num_workers(self) -> int:
        """Decoding workers: most cores on CUDA; on CPU one per two cores (the model needs the rest)."""
        cores = os.cpu_count() or 1
        if self.device.type == "cuda":
            return max(1, min(16, cores - 1))
        return max(1, min(4, cores // 2))

    def embed_image_files(
        self,
        entries: Sequence[tuple[str, Path]],
        *,
        batch_size: int | None = None,
        num_workers: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> EmbedResult:
        """Embed image files, skipping (and reporting) the unreadable ones.

        Args:
            entries: ``(id, path)`` pairs; ids are returned with their vectors.
            batch_size: images per forward pass; default :meth:`default_batch_size`.
            num_workers: DataLoader decoding processes (0: decode in this process); default
                :meth:`default_num_workers`.
            on_batch: called as ``on_batch(done, total)`` after each batch, for progress bars.

        Returns:
            The vectors of the readable images in input order, and ``(id, reason)`` for the others.
        """
        total = len(entries)
        batch_size = batch_size or self.default_batch_size()
        if num_workers is None:
            num_workers = min(self.default_num_workers(), max(0, (total - 1) // batch_size))
        loader = DataLoader(
            ImageFiles(entries, self.preprocessor),
            batch_size=batch_size,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=worker_init if num_workers > 0 else None,
            prefetch_factor=4 if num_workers > 0 else None,
        )
        ids: list[str] = []
        parts: list[np.ndarray] = []
        failed: list[Failure] = []
        done = 0
        for batch in loader:
            if batch.pixels is not None:
                parts.append(self.embed_image_tensors(batch.pixels))
                ids.extend(batch.ids)
            for item_id, reason in batch.failed:
                logger.warning("image %s skipped: %s", item_id, reason)
            failed.extend(batch.failed)
            done += len(batch.ids) + len(batch.failed)
            if on_batch is not None:
                on_batch(done, total)
        vectors = np.concatenate(parts) if parts else np.empty((0, self.dim), dtype=np.float16)
        logger.info("embedded %d images with %s (%d failed)", len(ids), self.model_key, len(failed))
        return EmbedResult(ids=ids, vectors=vectors, failed=failed)
