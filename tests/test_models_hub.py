"""A pretrained tag's weights: cached ones load offline, missing ones fail at once without a network."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest

from models.embedder import ModelLoadError, check_weights, load_clip
from models.hub import _PROXY_VARS, hub_offline, reachable, weights_source

REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"  # ViT-B-32's laion2b_s34b_b79k weights


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return cache


def test_a_tag_not_cached_with_the_hub_offline_fails_at_once(empty_cache: Path, monkeypatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="not in the local cache and the hub is set offline") as err:
        load_clip("ViT-B-32", "laion2b_s34b_b79k", device="cpu")
    assert "QRELS_CLIP_PRETRAINED" in str(err.value)  # and how to point at a local file


def test_a_tag_not_cached_with_the_hub_unreachable_fails_at_once(empty_cache: Path, monkeypatch) -> None:
    # Port 9 on loopback refuses at once, like a machine without a network.
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    assert not reachable("127.0.0.1", 9)
    with pytest.raises(ModelLoadError, match=r"127\.0\.0\.1 cannot be reached"):
        load_clip("ViT-B-32", "laion2b_s34b_b79k", device="cpu")


def test_cached_weights_are_found_and_load_with_the_hub_offline(empty_cache: Path) -> None:
    snapshot = empty_cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    assert weights_source("ViT-B-32", "laion2b_s34b_b79k").cached
    with hub_offline():
        assert huggingface_hub.constants.is_offline_mode()
    assert not huggingface_hub.constants.is_offline_mode()


def test_check_weights_names_the_problem_without_loading(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no config named 'ViT-Nope'"):
        check_weights("ViT-Nope", "openai")
    with pytest.raises(ModelLoadError, match=r"known tags: .*laion2b_s34b_b79k"):
        check_weights("ViT-B-32", "laion9000")
    with pytest.raises(ModelLoadError, match="does not exist"):
        check_weights("ViT-B-32", str(tmp_path / "missing.pt"))
    checkpoint = tmp_path / "mine.pt"
    checkpoint.write_bytes(b"")
    assert check_weights("ViT-B-32", str(checkpoint)) == checkpoint.resolve()
    assert check_weights("ViT-B-32", "laion2b_s34b_b79k") is None
