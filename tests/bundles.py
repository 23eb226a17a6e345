"""Build small native bundles on disk for tests."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

COLOURS = [(200, 30, 30), (30, 160, 40), (40, 60, 210), (230, 200, 40), (20, 20, 20), (240, 240, 240)]


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=90)
    return out.getvalue()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_qrels(path: Path, rows: list[tuple[str, str, int]]) -> None:
    path.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{i}\t{s}\n" for q, i, s in rows))


def make_bundle(root: Path, n_items: int = 6, n_queries: int = 3) -> Path:
    """A valid bundle: items it1..itN with images, queries q1..qM, two positives each."""
    images = root / "images"
    images.mkdir(parents=True)
    items = []
    for n in range(1, n_items + 1):
        name = f"it{n}.jpg" if n % 2 else f"it{n}.png"
        colour = COLOURS[n % len(COLOURS)]
        (images / name).write_bytes(jpeg_bytes(colour) if name.endswith("jpg") else png_bytes(colour))
        items.append(
            {
                "id": f"it{n}",
                "title": f"Item {n}",
                "text": f"Description of item {n}",
                "image": f"images/{name}",
                "category": "top" if n % 2 else "shoe",
                "language": "en",
                "attributes": {"n": n},
            }
        )
    write_jsonl(root / "items.jsonl", items)
    queries = [
        {"id": f"q{n}", "text": f"Find item {n}", "category": "top", "language": "en", "source": "generated"}
        for n in range(1, n_queries + 1)
    ]
    queries[0]["ref_items"] = ["it1"]
    write_jsonl(root / "queries.jsonl", queries)
    write_qrels(
        root / "qrels.tsv",
        [(f"q{n}", f"it{(n % n_items) + 1}", 1) for n in range(1, n_queries + 1)]
        + [(f"q{n}", f"it{((n + 1) % n_items) + 1}", 1) for n in range(1, n_queries + 1)],
    )
    return root


def add_pooled_candidates(db, dataset: str) -> None:
    """Give every query of ``dataset`` a pooled run over all its items (rank = item order)."""
    from sqlalchemy import select

    from db.models import Candidate, Dataset, Item, Query, RankerRun

    with db.write() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == dataset))
        items = s.scalars(select(Item.id).where(Item.dataset_id == ds.id).order_by(Item.id)).all()
        run = RankerRun(dataset_id=ds.id, name="pooled", kind="pooled")
        s.add(run)
        s.flush()
        for qid in s.scalars(select(Query.id).where(Query.dataset_id == ds.id)):
            for rank, item in enumerate(items, start=1):
                s.add(
                    Candidate(
                        run_id=run.id,
                        query_id=qid,
                        item_id=item,
                        rank=rank,
                        score=1.0 / rank,
                        rankers={"clip_image": {"rank": rank, "score": 0.5}},
                    )
                )
