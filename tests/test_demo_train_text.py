"""The training data and encoder of demo/train_text.py (the demo model's bilingual text tower)."""

from __future__ import annotations

import random

import open_clip
import torch
from torch.nn import functional

from demo.train_text import TEXT_SHOWN, _encode, query_caption, text_pairs
from demo.vocabulary import DE_NOUN, sample_item_attributes
from models.embedder import DEMO_MODEL, register_model_configs


def test_text_pairs_mix_languages_and_mark_what_each_query_names() -> None:
    queries, texts, codes, mentions = text_pairs(200, random.Random(1), german_share=0.35)
    assert len(queries) == len(texts) == 200 and codes.shape == mentions.shape == (200, len(TEXT_SHOWN))
    german = sum(" aus " in t for t in texts)
    assert 30 < german < 120  # about 35 % of the item texts are German
    assert mentions.any(dim=1).float().mean() > 0.9  # nearly every query names a text attribute
    # Codes are per attribute value: two items of the same type share the type code.
    types = codes[:, TEXT_SHOWN.index("type")]
    assert 1 < len(set(types.tolist())) <= 7


def test_query_captions_name_what_the_query_asks_for() -> None:
    rng = random.Random(2)
    for _ in range(50):
        attributes = sample_item_attributes(rng)
        text, (has_type, _, _) = query_caption(attributes, rng)
        words = (attributes["type"], DE_NOUN[attributes["type"]][0], DE_NOUN[attributes["type"]][2])
        if has_type:
            assert any(w.lower() in text.lower() for w in words), text


def test_encode_over_the_needed_positions_equals_encode_text() -> None:
    register_model_configs()
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms(DEMO_MODEL, pretrained=None)
    tokenizer = open_clip.get_tokenizer(DEMO_MODEL)
    texts = [
        "red shoe",
        "Valora Tessa Schuh aus Netzstoff\nDas Modell Tessa von Valora, gefertigt aus Netzstoff.",
    ]
    with torch.no_grad():
        fast = _encode(model, tokenizer, texts)
        full = functional.normalize(model.encode_text(tokenizer(texts)), dim=-1)
    assert torch.allclose(fast, full, atol=1e-5)
