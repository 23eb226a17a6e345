"""Train the bundled demo CLIP model (``qrels-demo-clip``) on rendered demo product images.

No pretrained weights can be downloaded on the project's machines, so the demo ships a small
open_clip model trained here from scratch (``models/configs/qrels-demo-clip.json``): open_clip's
CLIP ResNet ("ModifiedResNet", as in RN50, here 1 block per stage, width 16, 64 px input) and a
3-layer text transformer with the default 49,408-token vocabulary. A ResNet rather than a tiny
ViT because, on an equal CPU budget (120 steps of 128), a 4-layer ViT (64 px, patch 8, width 192)
learned colour but not product type (zero-shot type accuracy 0.14, chance) while this ResNet
reached 0.90 in a third of the time. Images come from :func:`demo.images.render_item_image`
(JPEG-encoded and decoded exactly as :class:`models.images.ImagePreprocessor` decodes files),
texts from :func:`demo.captions.caption_variant`: :func:`demo.captions.visual_caption` and
variants naming one, two or three of the visual attributes (type, colour, pattern), in English and
(a fifth) German, sometimes with text-only clauses the image cannot show. The loss is CLIP's
symmetric contrastive loss with multi-positive targets: in a batch, a caption is a positive for
every image whose attributes it matches, not only for its own.

Everything is a function of ``--seed``: data are generated in this process, in order, and torch
runs with deterministic algorithms and a fixed thread count. Run::

    .venv/bin/python -m demo.train_clip            # ~10 min on 2 CPU cores

It writes ``models/demo_clip/qrels-demo-clip.pt`` (fp16 state dict, loadable with
``open_clip.create_model_and_transforms("qrels-demo-clip", pretrained=<that file>)``) and
``models/demo_clip/qrels-demo-clip.train.json`` (settings, time, metrics). The shipped checkpoint
then has its text tower trained again by :mod:`demo.train_text` (query ↔ item text in English and
German, image tower frozen): run ``python -m demo.train_text`` after this script.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import platform
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
from torch.nn import functional

from demo.captions import caption_variant, german_caption, visual_caption
from demo.images import IMAGE_SIZE, JPEG_QUALITY, render_item_image
from demo.vocabulary import COLOURS, PATTERNS, PRODUCT_TYPES, sample_item_attributes
from models.embedder import DEMO_CHECKPOINT, DEMO_MODEL, register_model_configs
from models.images import ImagePreprocessor

__all__ = ["TrainConfig", "evaluate", "main", "render_dataset", "train"]

logger = logging.getLogger("demo.train_clip")

_VISUAL = ("type", "colour", "pattern")
_VALUES: dict[str, tuple[str, ...]] = {"type": PRODUCT_TYPES, "colour": tuple(COLOURS), "pattern": PATTERNS}


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults produce the committed checkpoint."""

    seed: int = 0
    n_images: int = 24_000
    steps: int = 640
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 0.05
    threads: int = 2
    eval_items: int = 1_000
    eval_seed: int = 20_251_123


def _attribute_codes(attributes: Mapping[str, str]) -> list[int]:
    return [_VALUES[name].index(attributes[name]) for name in _VISUAL]


def render_dataset(
    n: int, seed: int, preprocess: ImagePreprocessor
) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, str]]]:
    """Render ``n`` items as the demo would (192 px JPEG) and decode them as the embedder does.

    Returns:
        ``(pixels uint8 [n, 3, H, W], attribute codes int64 [n, 3], attributes)``.
    """
    rng = random.Random(seed)
    height, width = preprocess.height, preprocess.width
    pixels = torch.empty((n, 3, height, width), dtype=torch.uint8)
    codes = torch.empty((n, 3), dtype=torch.int64)
    items: list[dict[str, str]] = []
    for i in range(n):
        attributes = sample_item_attributes(rng)
        image = render_item_image(attributes, seed=rng.getrandbits(32), size=IMAGE_SIZE)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
        buffer.seek(0)
        pixels[i] = torch.from_numpy(preprocess(buffer))
        codes[i] = torch.tensor(_attribute_codes(attributes))
        items.append(attributes)
    return pixels, codes, items


def _normalise(pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (pixels.float() / 255.0 - mean) / std


def _multi_positive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    scale: torch.Tensor,
    image_codes: torch.Tensor,
    text_codes: torch.Tensor,
    mentions: torch.Tensor,
) -> torch.Tensor:
    """CLIP's symmetric cross-entropy, with every matching (image, caption) pair a positive."""
    logits = scale * image_features @ text_features.T
    # match[i, j]: image i has every attribute caption j names.
    equal = image_codes[:, None, :] == text_codes[None, :, :]
    match = (equal | ~mentions[None, :, :]).all(dim=2).float()
    image_to_text = -(match / match.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    text_to_image = -(match / match.sum(0, keepdim=True) * logits.log_softmax(0)).sum(0).mean()
    return (image_to_text + text_to_image) / 2


def _lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    tokenizer: open_clip.tokenizer.SimpleTokenizer,
    pixels: torch.Tensor,
    items: Sequence[Mapping[str, str]],
    mean: torch.Tensor,
    std: torch.Tensor,
) -> dict[str, float]:
    """Text→image retrieval on held-out items.

    For each distinct caption (full attribute caption, and "colour type", "pattern type"), the
    relevant images are those with the named attributes; Recall@10 is the share of relevant images
    in the top 10, out of at most 10. Also reports hit@10 and zero-shot attribute accuracy
    (image → the best of all type/colour/pattern captions).
    """
    model.eval()
    image_features = torch.cat(
        [
            functional.normalize(model.encode_image(_normalise(pixels[i : i + 256], mean, std)), dim=-1)
            for i in range(0, len(pixels), 256)
        ]
    )
    metrics: dict[str, float] = {}
    kinds = {
        "full": lambda a: visual_caption(a),
        "colour_type": lambda a: f"a {a['colour']} {a['type']}",
        "pattern_type": lambda a: f"a {a['pattern']} {a['type']}",
        "full_german": german_caption,
    }
    for name, make in kinds.items():
        captions = sorted({make(a) for a in items})
        relevant = {c: [i for i, a in enumerate(items) if make(a) == c] for c in captions}
        text_features = functional.normalize(model.encode_text(tokenizer(captions)), dim=-1)
        top = (text_features @ image_features.T).topk(10, dim=1).indices.tolist()
        recalls, hits = [], []
        for caption, ranked in zip(captions, top, strict=True):
            wanted = set(relevant[caption])
            found = len(wanted.intersection(ranked))
            recalls.append(found / min(10, len(wanted)))
            hits.append(float(found > 0))
        metrics[f"recall@10_{name}"] = float(np.mean(recalls))
        metrics[f"hit@10_{name}"] = float(np.mean(hits))
        metrics[f"chance_recall@10_{name}"] = float(
            np.mean([10 / len(items) * len(relevant[c]) / min(10, len(relevant[c])) for c in captions])
        )
    # Zero-shot: pick the most similar full caption among all 280 combinations.
    combos = [
        {"type": t, "colour": c, "pattern": p} for t in PRODUCT_TYPES for c in COLOURS for p in PATTERNS
    ]
    text_features = functional.normalize(
        model.encode_text(tokenizer([visual_caption(a) for a in combos])), dim=-1
    )
    best = (image_features @ text_features.T).argmax(dim=1).tolist()
    for attribute in _VISUAL:
        metrics[f"zero_shot_{attribute}_accuracy"] = float(
            np.mean([combos[b][attribute] == a[attribute] for b, a in zip(best, items, strict=True)])
        )
    return metrics


def train(config: TrainConfig, out: Path) -> dict[str, object]:
    """Train, evaluate and save the demo model; return the record written beside the checkpoint."""
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    register_model_configs()
    model, _, _ = open_clip.create_model_and_transforms(DEMO_MODEL, pretrained=None)
    tokenizer = open_clip.get_tokenizer(DEMO_MODEL)
    cfg = open_clip.get_model_preprocess_cfg(model)
    preprocess = ImagePreprocessor(cfg)
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)

    pixels, codes, items = render_dataset(config.n_images, config.seed, preprocess)
    rendered = time.perf_counter()
    logger.info("rendered %d training images in %.0fs", config.n_images, rendered - started)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "embedding" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    caption_rng = random.Random(config.seed + 1)
    generator = torch.Generator().manual_seed(config.seed + 2)
    model.train()
    losses: list[float] = []
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        batch = torch.randint(0, config.n_images, (config.batch_size,), generator=generator)
        images = pixels[batch]
        flip = torch.rand(config.batch_size, generator=generator) < 0.5
        images[flip] = images[flip].flip(3)
        captions, mentions = zip(
            *(caption_variant(items[i], caption_rng) for i in batch.tolist()), strict=True
        )
        # open_clip's forward returns unit features and exp(logit_scale).
        image_features, text_features, scale = model(
            _normalise(images, mean, std), tokenizer(list(captions))
        )[:3]
        loss = _multi_positive_loss(
            image_features, text_features, scale, codes[batch], codes[batch], torch.tensor(mentions)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        if step % 20 == 0 or step == config.steps - 1:
            logger.info(
                "step %d/%d loss %.3f (mean of last 20: %.3f) lr %.2e, %.0fs",
                step + 1,
                config.steps,
                losses[-1],
                float(np.mean(losses[-20:])),
                _lr_at(step, config),
                time.perf_counter() - started,
            )
    trained = time.perf_counter()

    eval_pixels, _, eval_items = render_dataset(config.eval_items, config.eval_seed, preprocess)
    metrics = evaluate(model, tokenizer, eval_pixels, eval_items, mean, std)
    finished = time.perf_counter()

    out.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().to(torch.float16) for name, tensor in model.state_dict().items()}
    temp = out.with_suffix(".pt.tmp")
    torch.save(state, temp)
    temp.replace(out)
    record: dict[str, object] = {
        "model": DEMO_MODEL,
        "checkpoint": out.name,
        "checkpoint_bytes": out.stat().st_size,
        "config": asdict(config),
        "seconds": {
            "render": round(rendered - started, 1),
            "train": round(trained - rendered, 1),
            "evaluate": round(finished - trained, 1),
            "total": round(finished - started, 1),
        },
        "final_loss_mean_last_20": round(float(np.mean(losses[-20:])), 4),
        "eval": {
            "items": config.eval_items,
            "seed": config.eval_seed,
            **{k: round(v, 4) for k, v in metrics.items()},
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "threads": config.threads,
        },
    }
    out.with_name(f"{DEMO_MODEL}.train.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train with the defaults (or overrides) and print the record."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEMO_CHECKPOINT, help="checkpoint path")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--n-images", type=int, default=defaults.n_images)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--eval-items", type=int, default=defaults.eval_items)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = TrainConfig(
        seed=args.seed,
        n_images=args.n_images,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        threads=args.threads,
        eval_items=args.eval_items,
        warmup_steps=min(defaults.warmup_steps, max(1, args.steps // 5)),
    )
    record = train(config, args.out)
    # The record is this script's report; logging it keeps stdout for the JSON alone.
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
