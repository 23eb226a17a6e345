"""The embedding store: put/get/missing, atomic shards, resume after an interruption, reopen."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from models import store as store_module
from models.hashing import sha256_file
from models.store import EmbeddingStore, item_text_key, text_key

MODEL = "tiny__random-0123"


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float16)


def test_put_get_missing(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, MODEL)
    keys = [f"k{i}" for i in range(5)]
    vectors = _vectors(5)
    assert store.missing("image", keys) == keys
    assert store.put("image", keys[:3], vectors[:3]) == 3
    assert store.missing("image", [*keys, "k4", "k0"]) == ["k3", "k4"]
    assert store.put("image", keys, vectors) == 2  # stored keys are skipped
    got = store.get("image", ["k4", "k0", "k4"])
    assert got.dtype == np.float16 and np.array_equal(got, vectors[[4, 0, 4]])
    assert store.count("image") == 5 and store.count("text") == 0 and store.dim("image") == 8
    with pytest.raises(KeyError, match="k9"):
        store.get("image", ["k0", "k9"])
    with pytest.raises(ValueError, match="kind"):
        store.missing("thumbnail", keys)
    with pytest.raises(ValueError, match="dim"):
        store.put("image", ["new"], _vectors(1, dim=4))
    # Kinds are separate: the same key can be an image and a query.
    store.put("query", ["k0"], _vectors(1, seed=1))
    assert not np.array_equal(store.get("query", ["k0"]), store.get("image", ["k0"]))


def test_reopen_from_disk(tmp_path: Path) -> None:
    first = EmbeddingStore(tmp_path, MODEL)
    first.put("text", ["a", "b"], _vectors(2))
    first.put("text", ["c"], _vectors(1, seed=3))
    again = EmbeddingStore(tmp_path, MODEL)
    assert again.keys("text") == ["a", "b", "c"]
    assert np.array_equal(again.get("text", ["c", "a"]), first.get("text", ["c", "a"]))
    assert EmbeddingStore(tmp_path, "other-model").count("text") == 0


def test_interrupted_write_is_ignored_and_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EmbeddingStore(tmp_path, MODEL)
    keys = [f"k{i}" for i in range(6)]
    vectors = _vectors(6)
    store.put("image", keys[:2], vectors[:2])

    def crash(path: Path, write: object) -> None:  # dies after writing part of a temp file
        temp = path.with_name(f".tmp-{path.name}.dead")
        temp.write_bytes(b"\x93NUMPY half a shard")
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "_atomic_write", crash)
    with pytest.raises(KeyboardInterrupt):
        store.put("image", keys[2:4], vectors[2:4])
    monkeypatch.undo()
    folder = tmp_path / MODEL / "image"
    # An orphan vectors file (keys file never written) is ignored too.
    np.save(folder / "000009-orphan.npy", _vectors(3, seed=9))
    assert any(p.name.startswith(".tmp-") for p in folder.iterdir())

    resumed = EmbeddingStore(tmp_path, MODEL)
    todo = resumed.missing("image", keys)
    assert todo == keys[2:]
    resumed.put("image", todo, vectors[2:])
    assert np.array_equal(EmbeddingStore(tmp_path, MODEL).get("image", keys), vectors)

    resumed.compact("image")
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and not any(n.startswith(".tmp-") or "orphan" in n for n in names)
    assert np.array_equal(EmbeddingStore(tmp_path, MODEL).get("image", keys), vectors)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model_key"):
        EmbeddingStore(tmp_path, "../escape")
    store = EmbeddingStore(tmp_path, MODEL)
    with pytest.raises(ValueError, match="shape"):
        store.put("image", ["a", "b"], _vectors(3))
    with pytest.raises(ValueError, match="line break"):
        store.put("image", ["a\nb"], _vectors(1))
    assert store.get("image", []).shape[0] == 0


def test_keys(tmp_path: Path) -> None:
    image = tmp_path / "x.jpg"
    image.write_bytes(b"bytes")
    assert sha256_file(image) == hashlib.sha256(b"bytes").hexdigest()
    assert text_key("red dress") != text_key("red dress ")
    assert item_text_key("Title", "Text") == text_key("Title\nText")
