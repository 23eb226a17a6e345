"""The open_clip embedder on a tiny random-weight model built from a JSON config (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from models.embedder import (
    ClipEmbedder,
    EmbedResult,
    ModelLoadError,
    load_clip,
    register_model_configs,
)
from services.core.config import load_settings

TINY = "qrels-test-tiny"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ClipEmbedder:
    folder = tmp_path_factory.mktemp("configs")
    (folder / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    register_model_configs(folder)
    torch.manual_seed(0)
    return load_clip(TINY, None, device="cpu", allow_random=True)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return np.linalg.norm(vectors.astype(np.float32), axis=1)


def _write_images(folder: Path, n: int) -> list[tuple[str, Path]]:
    rng = np.random.default_rng(0)
    entries = []
    for i in range(n):
        path = folder / f"img{i}.jpg"
        # Different sizes and aspect ratios; one big enough for JPEG draft mode to kick in.
        height, width = (300, 200) if i == 0 else (40 + 7 * i, 60)
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
        entries.append((f"id{i}", path))
    return entries


def test_embed_texts_shapes_dtype_unit_norm(tiny: ClipEmbedder) -> None:
    vectors = tiny.embed_texts(["a photo of a red striped dress", "blue shoe", "x" * 500], batch_size=2)
    assert vectors.shape == (3, 32) and vectors.dtype == np.float16
    assert np.allclose(_unit(vectors), 1.0, atol=2e-3)
    assert tiny.dim == 32
    assert tiny.embed_texts([]).shape == (0, 32)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_embed_image_files_skips_and_reports_bad_files(
    tiny: ClipEmbedder, tmp_path: Path, num_workers: int
) -> None:
    entries = _write_images(tmp_path, 7)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(entries[1][1].read_bytes()[:200])  # a JPEG cut short
    text = tmp_path / "notes.jpg"
    text.write_text("this is a text file posing as a JPEG")
    entries[2:2] = [("corrupt", corrupt), ("text", text)]
    entries.append(("missing", tmp_path / "nope.jpg"))
    progress: list[tuple[int, int]] = []

    result = tiny.embed_image_files(
        entries, batch_size=3, num_workers=num_workers, on_batch=lambda d, t: progress.append((d, t))
    )

    assert isinstance(result, EmbedResult)
    assert result.ids == [f"id{i}" for i in range(7)]
    assert result.vectors.shape == (7, 32) and result.vectors.dtype == np.float16
    assert np.allclose(_unit(result.vectors), 1.0, atol=2e-3)
    failed = dict(result.failed)
    assert set(failed) == {"corrupt", "text", "missing"}
    assert "truncated" in failed["corrupt"] or "OSError" in failed["corrupt"]
    assert "UnidentifiedImageError" in failed["text"]
    assert "notes.jpg" in failed["text"] and "BytesIO" not in failed["text"]  # names the file
    assert progress[-1] == (10, 10)


def test_files_match_tensor_path_and_open_clip_preprocess(tiny: ClipEmbedder, tmp_path: Path) -> None:
    entries = _write_images(tmp_path, 3)
    png = tmp_path / "img.png"  # PNG: no draft mode, so pixels must equal open_clip's transform
    Image.open(entries[1][1]).save(png)
    _, _, preprocess = open_clip.create_model_and_transforms(TINY)
    reference = preprocess(Image.open(png).convert("RGB")).unsqueeze(0)

    from_files = tiny.embed_image_files([("png", png)], num_workers=0).vectors
    from_float = tiny.embed_image_tensors(reference)
    mine = torch.from_numpy(tiny.preprocessor(png)).unsqueeze(0)

    assert np.allclose(from_files.astype(np.float32), from_float.astype(np.float32), atol=2e-3)
    assert torch.allclose(torch.addcmul(tiny._shift, mine.float(), tiny._scale), reference, atol=1e-5)


def test_model_key_is_filesystem_safe(tiny: ClipEmbedder, tmp_path: Path) -> None:
    assert tiny.model_key.startswith(f"{TINY}__random-")
    checkpoint = tmp_path / "weights v1.pt"
    torch.save(tiny.model.state_dict(), checkpoint)
    loaded = load_clip(TINY, str(checkpoint), device="cpu")
    assert loaded.model_key.startswith(f"{TINY}__weights-v1-") and "/" not in loaded.model_key
    vectors = [e.embed_texts(["red dress"]) for e in (tiny, loaded)]
    assert np.array_equal(*vectors)


@pytest.mark.parametrize(
    ("model", "pretrained", "expected"),
    [
        (TINY, "no-such-tag", "no-such-tag"),
        (TINY, "/nowhere/ckpt.pt", "does not exist"),
        ("ViT-B-32", "not-a-laion-tag", "known tags"),
        ("no-such-model", "openai", "no config"),
        (TINY, None, "no weights"),
    ],
)
def test_model_load_errors_name_model_tag_and_fix(
    tiny: ClipEmbedder, model: str, pretrained: str | None, expected: str
) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_clip(model, pretrained, device="cpu")
    message = str(info.value)
    assert model in message and str(pretrained) in message and expected in message
    if model != "no-such-model":
        assert "QRELS_CLIP_PRETRAINED" in message


def test_clip_pretrained_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # QRELS_CLIP_PRETRAINED is read in one place, services.core.config; the ranking service lets
    # it override a dataset's weights.
    monkeypatch.delenv("QRELS_CLIP_PRETRAINED", raising=False)
    assert load_settings().clip_pretrained is None
    monkeypatch.setenv("QRELS_CLIP_PRETRAINED", "  ")
    assert load_settings().clip_pretrained is None
    monkeypatch.setenv("QRELS_CLIP_PRETRAINED", "/models/ckpt.pt")
    assert load_settings().clip_pretrained == "/models/ckpt.pt"
