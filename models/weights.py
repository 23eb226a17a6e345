"""Which weights a CLIP model has, named without loading them (no torch, no open_clip here).

The embedding store keeps vectors per ``model_key`` (:attr:`models.embedder.ClipEmbedder.model_key`).
:func:`weights_key` gives the key :func:`models.embedder.load_clip` would give, from the model
name and the weights' tag or checkpoint file alone, so a job can ask the store what is missing
before it spends seconds importing torch and loading a model it may not need.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from models.hashing import sha256_file

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "DEMO_CHECKPOINT",
    "DEMO_MODEL",
    "ModelLoadError",
    "checkpoint_digest",
    "safe_name",
    "weights_key",
]

DEMO_MODEL = "qrels-demo-clip"
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "demo_clip" / "qrels-demo-clip.pt"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz", ".ckpt")


class ModelLoadError(RuntimeError):
    """A CLIP model or its weights could not be loaded; the message says what to fix.

    The services turn it into :class:`services.core.errors.ModelUnavailable` for the pages.
    """


def safe_name(text: str) -> str:
    """``text`` as a file-name part: runs of other characters become one dash."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def checkpoint_digest(path: Path) -> str:
    """SHA-256 of a checkpoint file, hashed once per process while its size and mtime stay."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        found = _digests.get(key)
    if found is None:
        found = sha256_file(path)
        with _digests_lock:
            _digests[key] = found
    return found


def checkpoint_tag(checkpoint: Path) -> str:
    """The weights part of the key of a local checkpoint: its name and the start of its hash."""
    return f"{safe_name(checkpoint.stem)}-{checkpoint_digest(checkpoint)[:16]}"


def weights_key(model: str, pretrained: str | None) -> str | None:
    """The ``model_key`` :func:`models.embedder.load_clip` gives ``model`` with ``pretrained``, or
    None where only loading can tell (random weights, ``hf-hub:``/``local-dir:`` models, a
    checkpoint path that does not exist: loading reports what is wrong)."""
    if pretrained is None or model.startswith(("hf-hub:", "local-dir:")):
        return None
    candidate = Path(pretrained).expanduser()
    if candidate.is_file():
        tag = checkpoint_tag(candidate.resolve())
    elif os.sep in pretrained or "/" in pretrained or pretrained.lower().endswith(CHECKPOINT_SUFFIXES):
        return None
    else:
        tag = safe_name(pretrained)
    return f"{safe_name(model)}__{tag}"
