"""The bundled demo CLIP model: loads through open_clip, retrieves fresh demo items by caption, and
matches queries to item texts across English and German."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from demo.captions import german_caption, visual_caption
from demo.text import keyword_query
from demo.writer import generate_demo
from models.embedder import DEMO_CHECKPOINT, DEMO_MODEL, ClipEmbedder, load_clip, register_model_configs
from models.search import topk

# Measured 1.000 for all three caption kinds, both on this test's items and on the 1,000 held-out
# items of models/demo_clip/qrels-demo-clip.train.json; chance is about 0.03 here.
MIN_RECALL_FULL = 0.90
MIN_RECALL_TWO = 0.90
# Query -> item text across languages: measured 1.000 (English queries, German items) and 0.828
# (German queries, English items) on this test's items; 0.82 on the held-out items of
# models/demo_clip/qrels-demo-clip.text.json.
MIN_RECALL_TEXT = 0.75


@pytest.fixture(scope="module")
def fresh_items(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    # A seed the training data never used (training draws from seed 0, its evaluation from 20251123).
    bundle = tmp_path_factory.mktemp("demo") / "bundle"
    generate_demo(bundle, n_items=300, n_queries=10, seed=4242, workers=1)
    items = [json.loads(line) for line in (bundle / "items.jsonl").read_text("utf-8").splitlines()]
    return bundle, items


@pytest.fixture(scope="module")
def demo() -> ClipEmbedder:
    return load_clip(DEMO_MODEL, str(DEMO_CHECKPOINT), device="cpu")


def test_checkpoint_is_small_and_loads_with_plain_open_clip() -> None:
    assert DEMO_CHECKPOINT.stat().st_size <= 20 * 1024 * 1024
    register_model_configs()
    model, _, _ = open_clip.create_model_and_transforms(DEMO_MODEL, pretrained=str(DEMO_CHECKPOINT))
    assert open_clip.get_model_preprocess_cfg(model)["size"] == 64
    saved = torch.load(DEMO_CHECKPOINT, weights_only=True)
    assert all(tensor.dtype == torch.float16 for tensor in saved.values() if tensor.is_floating_point())
    assert torch.equal(model.logit_scale.detach().half(), saved["logit_scale"])


def _recall_at_10(
    demo: ClipEmbedder,
    items: list[dict],
    image_vectors: np.ndarray,
    caption: Callable[[Mapping[str, str]], str],
) -> float:
    relevant: dict[str, set[int]] = defaultdict(set)
    for row, item in enumerate(items):
        relevant[caption(item["attributes"])].add(row)
    captions = sorted(relevant)
    _, top = topk(demo.embed_texts(captions), image_vectors, 10, device="cpu")
    recalls = [
        len(relevant[c].intersection(top[n])) / min(10, len(relevant[c])) for n, c in enumerate(captions)
    ]
    return float(np.mean(recalls))


def test_text_to_image_recall_on_fresh_items(
    demo: ClipEmbedder, fresh_items: tuple[Path, list[dict]]
) -> None:
    bundle, items = fresh_items
    result = demo.embed_image_files([(it["id"], bundle / it["image"]) for it in items])
    assert not result.failed and result.ids == [it["id"] for it in items]
    full = _recall_at_10(demo, items, result.vectors, visual_caption)
    two = _recall_at_10(demo, items, result.vectors, lambda a: f"a {a['colour']} {a['type']}")
    german = _recall_at_10(demo, items, result.vectors, german_caption)
    print(
        f"demo CLIP Recall@10, 300 fresh items: full {full:.3f}, colour+type {two:.3f}, German {german:.3f}"
    )
    assert full >= MIN_RECALL_FULL
    assert two >= MIN_RECALL_TWO
    assert german >= MIN_RECALL_TWO


def test_query_to_item_text_recall_across_languages(
    demo: ClipEmbedder, fresh_items: tuple[Path, list[dict]]
) -> None:
    """An English query finds German item texts and a German one English texts, by type, material,
    brand and size: words the two languages do not share ("leather shoe" / "Schuh aus Leder")."""
    _, items = fresh_items
    by_language = {lang: [it for it in items if it["language"] == lang] for lang in ("en", "de")}
    vectors = {
        lang: demo.embed_texts([f"{it['title']}\n{it['text']}" for it in rows])
        for lang, rows in by_language.items()
    }
    rng = random.Random(7)
    recalls: dict[str, list[float]] = defaultdict(list)
    for query_language, item_language in (("en", "de"), ("de", "en")):
        rows = by_language[item_language]
        for target in rng.sample(rows, 30):
            named = rng.choice(
                (("type", "material"), ("type", "brand"), ("brand", "material"), ("type", "size"))
            )
            wanted = {a: target["attributes"][a] for a in named}
            relevant = {
                n for n, it in enumerate(rows) if all(it["attributes"][a] == v for a, v in wanted.items())
            }
            query = keyword_query(wanted, query_language, rng)
            _, top = topk(demo.embed_texts([query]), vectors[item_language], 10, device="cpu")
            recalls[query_language].append(len(relevant.intersection(top[0])) / min(10, len(relevant)))
    english, german = (float(np.mean(recalls[lang])) for lang in ("en", "de"))
    print(
        f"demo CLIP query -> item text Recall@10 across languages: English query {english:.3f}, German {german:.3f}"
    )
    assert english >= MIN_RECALL_TEXT and german >= MIN_RECALL_TEXT
