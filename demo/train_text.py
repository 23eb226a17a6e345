"""Train the demo CLIP model's text tower for text→text retrieval too, across English and German.

The demo model of :mod:`demo.train_clip` learns captions → images: colour, pattern and type, and
to ignore the text-only clauses (material, brand, size). Its ``clip_text`` ranker (query → item
title and text) is then near chance, and no ranker matches an English query to a German item's
text ("leather" in the query, "Leder" in the item). This script keeps the trained image tower
frozen and trains a new text tower (from scratch, seeded) on two symmetric multi-positive
contrastive losses at once:

- caption ↔ image, as :mod:`demo.train_clip` does, against the frozen image vectors, half of the
  captions being demo queries about the image's item (:func:`query_caption`): queries keep
  finding images by what they show, whatever text-only conditions they add;
- query ↔ item text: demo queries (sentences and keyword lists, English or German) against item
  titles and descriptions (English or German) written by :mod:`demo.text`; a query is a positive
  for every item text in the batch whose type, material, brand and size match the ones it names,
  in either language.

One query vector then carries the visual conditions (for images) and the text conditions (for item
texts). The text context is 80 tokens (``models/configs/qrels-demo-clip.json``) so that an item's
whole description, sizes at its end included, is read. The image tower is untouched, so rerunning
this script on its own output gives the same checkpoint. Everything is a function of ``--seed``;
torch runs with deterministic algorithms and a fixed thread count. Run::

    .venv/bin/python -m demo.train_text     # ~7 min of one idle core (estimated); 17 min at load 15 on 2 shared cores

It rewrites ``models/demo_clip/qrels-demo-clip.pt`` and writes
``models/demo_clip/qrels-demo-clip.text.json`` (settings, time, metrics).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
from torch.nn import functional

from demo.captions import caption_variant
from demo.text import item_text, keyword_query, query_text
from demo.train_clip import _multi_positive_loss, _normalise, evaluate, render_dataset
from demo.vocabulary import BRANDS, MATERIALS, PRODUCT_TYPES, SIZES, sample_item_attributes
from models.embedder import DEMO_CHECKPOINT, DEMO_MODEL, register_model_configs
from models.images import ImagePreprocessor

__all__ = [
    "TEXT_SHOWN",
    "TextTrainConfig",
    "evaluate_text",
    "main",
    "query_caption",
    "text_pairs",
    "train_text",
]

logger = logging.getLogger("demo.train_text")

#: The attributes an item's text shows, and their values in a fixed order.
TEXT_SHOWN = ("type", "material", "brand", "size")
_VALUES: dict[str, tuple[str, ...]] = {
    "type": PRODUCT_TYPES,
    "material": tuple(sorted({m for ms in MATERIALS.values() for m in ms})),
    "brand": BRANDS,
    "size": tuple(sorted({s for ss in SIZES.values() for s in ss})),
}


@dataclass(frozen=True)
class TextTrainConfig:
    """Training settings; the defaults produce the committed checkpoint."""

    seed: int = 0
    n_images: int = 4_000
    steps: int = 200
    image_batch: int = 128
    text_batch: int = 128
    lr: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 0.05
    german_share: float = 0.35
    threads: int = 1  # on a shared 2-core machine two threads took 3x the CPU time per step
    eval_items: int = 1_000
    eval_seed: int = 20_251_123
    device: str = "cpu"


def _conditions(attributes: dict[str, str], rng: random.Random, keywords: bool) -> dict[str, str]:
    """What a query asks for: the type (always in sentences), some visual, mostly some text attributes."""
    named = [a for a in ("colour", "pattern") if rng.random() < 0.45]
    if rng.random() < 0.9:
        text = [a for a in ("material", "brand", "size") if rng.random() < 0.5]
        named += text or [rng.choice(("material", "brand", "size"))]
    if not keywords or rng.random() < 0.8 or not named:
        named = ["type", *named]
    return {
        a: attributes[a] for a in ("type", "colour", "pattern", "material", "brand", "size") if a in named
    }


def query_caption(attributes: dict[str, str], rng: random.Random) -> tuple[str, tuple[bool, bool, bool]]:
    """A demo query about an image's item, and which of (type, colour, pattern) it names.

    Half of the captions of the image loss are queries as the demo writes them (keyword lists and
    sentences, English or German, with text-only conditions the image cannot show), so that the
    query vector finds images by their visual conditions whatever else the query asks for.
    """
    keywords = rng.random() < 0.4
    conditions = _conditions(attributes, rng, keywords)
    language = "de" if rng.random() < 0.35 else "en"
    if keywords:
        text = keyword_query(conditions, language, rng)
    else:
        text = query_text(conditions, language, "human" if rng.random() < 0.4 else "generated", rng)
    return text, ("type" in conditions, "colour" in conditions, "pattern" in conditions)


def text_pairs(
    n: int, rng: random.Random, german_share: float
) -> tuple[list[str], list[str], torch.Tensor, torch.Tensor]:
    """``n`` (query, item text) pairs of random items, each side English or German.

    Returns:
        ``(queries, item texts, item codes int64 [n, 4], query mentions bool [n, 4])``: the codes
        of each item's :data:`TEXT_SHOWN` attributes and which of them each query names.
    """
    queries, texts = [], []
    codes = torch.empty((n, len(TEXT_SHOWN)), dtype=torch.int64)
    mentions = torch.empty((n, len(TEXT_SHOWN)), dtype=torch.bool)
    for i in range(n):
        attributes = sample_item_attributes(rng)
        item_language = "de" if rng.random() < german_share else "en"
        title, description = item_text(attributes, item_language, rng)
        texts.append(f"{title}\n{description}")  # as services.ranking.pool joins them
        language = "de" if rng.random() < german_share else "en"
        style = rng.random()
        conditions = _conditions(attributes, rng, keywords=style < 0.4)
        if style < 0.4:
            queries.append(keyword_query(conditions, language, rng))
        else:
            queries.append(query_text(conditions, language, "human" if style < 0.65 else "generated", rng))
        codes[i] = torch.tensor([_VALUES[a].index(attributes[a]) for a in TEXT_SHOWN])
        mentions[i] = torch.tensor([a in conditions for a in TEXT_SHOWN])
    return queries, texts, codes, mentions


def _lr_at(step: int, config: TextTrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _encode(
    model: torch.nn.Module, tokenizer: open_clip.tokenizer.SimpleTokenizer, texts: Sequence[str]
) -> torch.Tensor:
    """Unit text vectors, as ``model.encode_text`` computes them, over only as many positions as the
    longest text needs: the causal mask makes the end-of-text token's output independent of the
    padding after it, so the result is the same and the work is a fraction for short texts."""
    tokens = tokenizer(list(texts)).to(model.positional_embedding.device)
    length = int((tokens != 0).sum(dim=1).max())
    tokens = tokens[:, :length]
    x = model.token_embedding(tokens) + model.positional_embedding[:length]
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(len(tokens)), tokens.argmax(dim=-1)] @ model.text_projection
    return functional.normalize(x, dim=-1)


@torch.inference_mode()
def evaluate_text(
    model: torch.nn.Module, tokenizer: open_clip.tokenizer.SimpleTokenizer, n_items: int, seed: int
) -> dict[str, float]:
    """Query → item text retrieval on fresh items, within and across languages.

    ``n_items`` items with English and German texts; queries (keyword lists and sentences) naming
    at least two of the type, material, brand and size of random items (of 300 drawn). Recall@10 out of min(10, relevant); ``cross``: an
    English query against the German items only, and a German one against the English items.
    """
    model.eval()
    rng = random.Random(seed)
    items = [sample_item_attributes(rng) for _ in range(n_items)]
    languages = ["de" if rng.random() < 0.5 else "en" for _ in items]
    texts = ["\n".join(item_text(a, lang, rng)) for a, lang in zip(items, languages, strict=True)]
    item_vectors = torch.cat([_encode(model, tokenizer, texts[i : i + 256]) for i in range(0, n_items, 256)])
    asked = []
    for _ in range(300):
        target = rng.choice(items)
        keywords = rng.random() < 0.5
        conditions = _conditions(target, rng, keywords)
        language = "de" if rng.random() < 0.5 else "en"
        text = (
            keyword_query(conditions, language, rng)
            if keywords
            else query_text(conditions, language, "generated", rng)
        )
        shown = {a: v for a, v in conditions.items() if a in TEXT_SHOWN}
        if len(shown) >= 2:  # the type and at least one text attribute: a narrow set of items
            asked.append((text, language, keywords, shown))
    query_vectors = _encode(model, tokenizer, [text for text, _, _, _ in asked])
    recalls: dict[str, list[float]] = {"same": [], "cross": [], "keywords": []}
    for (_, language, keywords, shown), vector in zip(asked, query_vectors, strict=True):
        for kind, wanted_language in (("same", language), ("cross", "en" if language == "de" else "de")):
            rows = [n for n, lang in enumerate(languages) if lang == wanted_language]
            relevant = {n for n in rows if all(items[n][a] == v for a, v in shown.items())}
            if not relevant:
                continue
            top = {rows[j] for j in (item_vectors[rows] @ vector).topk(10).indices.tolist()}
            recall = len(relevant & top) / min(10, len(relevant))
            recalls[kind].append(recall)
            if keywords and kind == "cross":
                recalls["keywords"].append(recall)
    return {f"text_recall@10_{kind}": float(np.mean(values)) for kind, values in recalls.items()}


def train_text(config: TextTrainConfig, checkpoint: Path, out: Path) -> dict[str, object]:
    """Train a new text tower against ``checkpoint``'s frozen image tower; save to ``out``."""
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=config.device != "cpu")
    register_model_configs()
    model, _, _ = open_clip.create_model_and_transforms(DEMO_MODEL, pretrained=None)
    device = torch.device(config.device)
    tokenizer = open_clip.get_tokenizer(DEMO_MODEL)
    saved = torch.load(checkpoint, weights_only=True, map_location="cpu")
    visual = {k: v.float() for k, v in saved.items() if k.startswith("visual.")}
    model.load_state_dict(visual, strict=False)
    model.to(device)
    for parameter in model.visual.parameters():
        parameter.requires_grad_(False)
    cfg = open_clip.get_model_preprocess_cfg(model)
    preprocess = ImagePreprocessor(cfg)
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1).to(device)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1).to(device)

    pixels, codes, items = render_dataset(config.n_images, config.seed, preprocess)
    codes = codes.to(device)
    model.eval()
    with torch.inference_mode():
        image_features = torch.cat(
            [
                functional.normalize(
                    model.visual(_normalise(pixels[i : i + 256].to(device), mean, std)), dim=-1
                )
                for i in range(0, len(pixels), 256)
            ]
        ).clone()
    prepared = time.perf_counter()
    logger.info("rendered and embedded %d images in %.0fs", config.n_images, prepared - started)

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    text_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07), device=device))
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in trainable if p.ndim >= 2 and "embedding" not in n]},
            {
                "params": [p for n, p in trainable if p.ndim < 2 or "embedding" in n] + [text_scale],
                "weight_decay": 0.0,
            },
        ],
        lr=config.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
        weight_decay=config.weight_decay,
    )
    caption_rng = random.Random(config.seed + 1)
    pair_rng = random.Random(config.seed + 3)
    generator = torch.Generator().manual_seed(config.seed + 2)
    model.train()
    model.visual.eval()
    losses: list[tuple[float, float]] = []
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        batch = torch.randint(0, config.n_images, (config.image_batch,), generator=generator).to(device)
        captions, mentions = zip(
            *(
                caption_variant(items[i], caption_rng) if n % 2 else query_caption(items[i], caption_rng)
                for n, i in enumerate(batch.tolist())
            ),
            strict=True,
        )
        queries, texts, text_codes, text_mentions = text_pairs(
            config.text_batch, pair_rng, config.german_share
        )
        short = _encode(model, tokenizer, [*captions, *queries])
        caption_features, query_features = short.split([config.image_batch, config.text_batch])
        item_features = _encode(model, tokenizer, texts)
        image_loss = _multi_positive_loss(
            image_features[batch],
            caption_features,
            model.logit_scale.exp(),
            codes[batch],
            codes[batch],
            torch.tensor(mentions, device=device),
        )
        text_codes, text_mentions = text_codes.to(device), text_mentions.to(device)
        text_loss = _multi_positive_loss(
            item_features, query_features, text_scale.exp(), text_codes, text_codes, text_mentions
        )
        loss = image_loss + text_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
            text_scale.clamp_(0, math.log(100))
        losses.append((image_loss.item(), text_loss.item()))
        if step % 20 == 0 or step == config.steps - 1:
            recent = np.mean(losses[-20:], axis=0)
            logger.info(
                "step %d/%d loss image %.3f text %.3f (means of last 20) lr %.2e, %.0fs",
                step + 1,
                config.steps,
                recent[0],
                recent[1],
                _lr_at(step, config),
                time.perf_counter() - started,
            )
    trained = time.perf_counter()

    model.to("cpu")
    eval_pixels, _, eval_items = render_dataset(config.eval_items, config.eval_seed, preprocess)
    metrics = evaluate(model, tokenizer, eval_pixels, eval_items, mean.cpu(), std.cpu())
    metrics.update(evaluate_text(model, tokenizer, config.eval_items, config.eval_seed))
    finished = time.perf_counter()

    out.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().to(torch.float16) for name, tensor in model.state_dict().items()}
    temp = out.with_suffix(".pt.tmp")
    torch.save(state, temp)
    temp.replace(out)
    final = np.mean(losses[-20:], axis=0)
    record: dict[str, object] = {
        "model": DEMO_MODEL,
        "checkpoint": out.name,
        "checkpoint_bytes": out.stat().st_size,
        "image_tower_from": checkpoint.name,
        "config": asdict(config),
        "seconds": {
            "prepare": round(prepared - started, 1),
            "train": round(trained - prepared, 1),
            "evaluate": round(finished - trained, 1),
            "total": round(finished - started, 1),
        },
        "final_loss_mean_last_20": {"image": round(float(final[0]), 4), "text": round(float(final[1]), 4)},
        "eval": {
            "items": config.eval_items,
            "seed": config.eval_seed,
            **{k: round(v, 4) for k, v in metrics.items()},
        },
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "threads": config.threads,
        },
    }
    out.with_name(f"{DEMO_MODEL}.text.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train with the defaults (or overrides) and print the record."""
    defaults = TextTrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEMO_CHECKPOINT, help="image tower from here")
    parser.add_argument("--out", type=Path, default=DEMO_CHECKPOINT, help="checkpoint path")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--n-images", type=int, default=defaults.n_images)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--eval-items", type=int, default=defaults.eval_items)
    parser.add_argument("--device", default=defaults.device, help="cpu (the committed checkpoint) or cuda")
    parser.add_argument("--german-share", type=float, default=defaults.german_share)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = TextTrainConfig(
        seed=args.seed,
        steps=args.steps,
        n_images=args.n_images,
        threads=args.threads,
        eval_items=args.eval_items,
        device=args.device,
        german_share=args.german_share,
        lr=args.lr,
        warmup_steps=min(defaults.warmup_steps, max(1, args.steps // 5)),
    )
    record = train_text(config, args.checkpoint, args.out)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
