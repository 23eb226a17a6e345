"""Writes the demo catalogue as a native bundle with its planted truth: :func:`generate_demo`.

Bundle layout::

    items.jsonl    {"id", "title", "text", "image", "category", "language", "attributes"}
    queries.jsonl  {"id", "text", "category", "language", "source", "group"}
    qrels.tsv      query-id<TAB>corpus-id<TAB>score   (score is always 1)
    images/        <item id>.jpg, JPEG quality 90
    truth.jsonl    one line per query, then one per planted copy, see :func:`generate_demo`
    dataset.json   the dataset's settings: the demo CLIP model and truth.jsonl as its planted truth

Everything is a pure function of the arguments: the same arguments give byte-identical files,
whatever the number of worker processes. The parts: :mod:`demo.vocabulary` (attribute values and
words), :mod:`demo.text` (item and query texts), :mod:`demo.images` (item images),
:mod:`demo.planner` (queries, positives and planted problems).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.duplicates import apply_copies, copy_truth, plan_copies, write_copies
from demo.images import IMAGE_SIZE, RenderJob, render_images
from demo.planner import plan_queries
from demo.text import item_text
from demo.vocabulary import GERMAN_SHARE, sample_item_attributes
from services.core.errors import DemoError

__all__ = ["DemoSummary", "generate_demo"]

logger = logging.getLogger(__name__)

_MIN_ITEMS = 50
_OUTPUT_FILES = ("items.jsonl", "queries.jsonl", "qrels.tsv", "truth.jsonl", "dataset.json")
# What an import of the bundle sets on the dataset (services/formats/native.py reads it): the demo
# model with its shipped checkpoint ("demo"), and the planted truth the dashboard scores against.
# (The model's name is models.embedder.DEMO_MODEL, spelt out: importing torch here would slow `cli.py demo`.)
DATASET_SETTINGS = {"clip_model": "qrels-demo-clip", "clip_pretrained": "demo", "truth_path": "truth.jsonl"}


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate_demo` wrote.

    Attributes:
        out_dir: the bundle folder.
        n_items: lines in ``items.jsonl`` (and images).
        n_queries: lines in ``queries.jsonl``.
        n_qrels: data rows in ``qrels.tsv``.
        n_false_negatives: true positives left out of the qrels, over all queries.
        n_wrong_positives: qrels rows that violate a condition, over all queries (the planted
            ones on good queries plus the near misses carried by bad queries).
        n_bad_queries: contradictory plus unanswerable queries.
        n_groups: generated/human query pairs.
        n_single_modality: queries one modality alone answers (planted, or by chance).
        n_copies: items whose image is a copy of another item's (:mod:`demo.duplicates`).
    """

    out_dir: Path
    n_items: int
    n_queries: int
    n_qrels: int
    n_false_negatives: int
    n_wrong_positives: int
    n_bad_queries: int
    n_groups: int
    n_single_modality: int = 0
    n_copies: int = 0


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"{out_dir} is a file; choose a folder for the demo bundle")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise DemoError(
                f"{out_dir} is not empty; choose an empty or new folder, or pass overwrite=True "
                "to replace the demo files in it"
            )
        for name in _OUTPUT_FILES:
            (out_dir / name).unlink(missing_ok=True)
        if (out_dir / "images").is_dir():
            shutil.rmtree(out_dir / "images")
    (out_dir / "images").mkdir(parents=True, exist_ok=True)


def _write_files(out_dir: Path, contents: Mapping[str, Iterable[str]]) -> None:
    """Write every file under a temporary name, then rename them all (no half-written files)."""
    temps: list[tuple[Path, Path]] = []
    try:
        for name, lines in contents.items():
            final = out_dir / name
            temp = out_dir / f".{name}.tmp"
            temps.append((temp, final))
            with temp.open("w", encoding="utf-8", newline="\n") as fh:
                for line in lines:
                    fh.write(line)
                    fh.write("\n")
        for temp, final in temps:
            os.replace(temp, final)
    finally:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)


def generate_demo(
    out_dir: Path,
    *,
    n_items: int = 2000,
    n_queries: int = 200,
    seed: int = 0,
    workers: int | None = None,
    overwrite: bool = False,
    image_size: int = IMAGE_SIZE,
    single_modality_share: float = 0.0,
) -> DemoSummary:
    """Generate a demo catalogue with planted truth as a native bundle in ``out_dir``.

    ``truth.jsonl`` has one line per query, in ``queries.jsonl`` order, then one line per planted
    copy (``"kind": "duplicate"``, see :mod:`demo.duplicates`; lines without ``kind`` are queries)::

        {"query_id": "q0001",
         "target_id": "it000042",                 # the item the query was built from
         "conditions": {"type": "dress", "colour": "red", "material": "silk"},
         "true_positives": [...],                 # items satisfying every condition
         "labelled_positives": [...],             # the ids written to qrels.tsv
         "false_negatives": [...],                # true positives not in qrels.tsv
         "wrong_positives": [...],                # qrels ids violating exactly one condition
         "wrong_positive_violations": {"it000007": "colour"},
         "bad": null | "contradictory" | "unanswerable",
         "source": "generated" | "human",
         "group": null | "g0001",
         "single_modality": null | "image" | "text" | "both"}  # one modality alone answers it

    Condition values are strings, except that a contradictory query's contradicted attribute
    holds a list of two values, meaning "must be both" (which no item is). Every id list is
    sorted, and ``labelled_positives`` = (``true_positives`` − ``false_negatives``) ∪
    ``wrong_positives``. ``single_modality`` names the modality whose conditions alone (with the
    type) select exactly the true positives: the planted single-modality queries (conditions of
    one modality only, :mod:`demo.shortcuts`) and any query where it happens by chance.

    Args:
        out_dir: the bundle folder; created if missing, must be empty unless ``overwrite``.
        n_items: catalogue size (at least 50).
        n_queries: query lines to write, group variants included (1 ≤ n_queries ≤ n_items).
        seed: everything is a function of this seed.
        workers: processes for rendering images; default ``min(2, os.cpu_count())``. Small
            catalogues (< 2000 items) and ``workers=1`` render in this process. The output does
            not depend on it.
        overwrite: replace the demo files (the four bundle files and ``images/``) in a
            non-empty ``out_dir``; other files there are left alone.
        image_size: width and height of the images in pixels.
        single_modality_share: share of the good query lines planted as single-modality queries
            (0 to 0.5; :data:`demo.shortcuts.SINGLE_MODALITY_SHARE` is what the app's demo uses).
            0 plants none, and the catalogue of a seed is what it was before this option.

    Returns:
        Counts of what was written.

    Raises:
        DemoError: ``out_dir`` is a non-empty folder and ``overwrite`` is false, or is a file;
            ``n_items`` < 50; ``n_queries`` < 1 or > ``n_items``; ``workers`` < 1;
            ``image_size`` < 32; ``single_modality_share`` outside 0 to 0.5.
    """
    out_dir = Path(out_dir)
    if n_items < _MIN_ITEMS:
        raise DemoError(f"n_items is {n_items}; ask for at least {_MIN_ITEMS} items")
    if n_queries < 1:
        raise DemoError(f"n_queries is {n_queries}; ask for at least 1 query")
    if n_queries > n_items:
        raise DemoError(
            f"n_queries ({n_queries}) exceeds n_items ({n_items}): every query needs its own target "
            f"item; ask for at most {n_items} queries or more items"
        )
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if workers < 1:
        raise DemoError(f"workers is {workers}; use at least 1 (or leave it unset)")
    if image_size < 32:
        raise DemoError(f"image_size is {image_size}; use at least 32 pixels")
    if not 0.0 <= single_modality_share <= 0.5:
        raise DemoError(f"single_modality_share is {single_modality_share}; use a share from 0 to 0.5")
    _prepare_out_dir(out_dir, overwrite)

    started = time.perf_counter()
    rng = random.Random(seed)
    item_width = max(6, len(str(n_items)))
    query_width = max(4, len(str(n_queries)))
    item_ids = [f"it{i + 1:0{item_width}d}" for i in range(n_items)]
    items: list[dict[str, str]] = []
    item_lines: list[str] = []
    jobs: list[RenderJob] = []
    images_dir = out_dir / "images"
    for item_id in item_ids:
        attributes = sample_item_attributes(rng)
        language = "de" if rng.random() < GERMAN_SHARE else "en"
        title, text = item_text(attributes, language, rng)
        image_seed = rng.getrandbits(32)
        items.append(attributes)
        jobs.append((str(images_dir / f"{item_id}.jpg"), attributes, image_seed))
        item_lines.append(
            _dumps(
                {
                    "id": item_id,
                    "title": title,
                    "text": text,
                    "image": f"images/{item_id}.jpg",
                    "category": attributes["type"],
                    "language": language,
                    "attributes": attributes,
                }
            )
        )
    copies = plan_copies(n_items, seed)
    jobs = apply_copies(copies, items, item_lines, jobs, _dumps)
    queries = plan_queries(items, n_queries, rng, single_modality_share=single_modality_share)
    planned = time.perf_counter()

    render_images(jobs, image_size, workers)
    write_copies(images_dir, item_ids, copies)
    rendered = time.perf_counter()

    query_lines: list[str] = []
    qrels_lines = ["query-id\tcorpus-id\tscore"]
    truth_lines: list[str] = []
    n_false_negatives = n_wrong_positives = 0
    for number, q in enumerate(queries, start=1):
        query_id = f"q{number:0{query_width}d}"
        labelled = q.labelled()
        wrong = q.wrong_positives or {}
        n_false_negatives += len(q.false_negatives)
        n_wrong_positives += len(wrong)
        query_lines.append(
            _dumps(
                {
                    "id": query_id,
                    "text": q.text,
                    "category": q.conditions["type"],
                    "language": q.language,
                    "source": q.source,
                    "group": q.group,
                }
            )
        )
        qrels_lines.extend(f"{query_id}\t{item_ids[i]}\t1" for i in labelled)
        truth_lines.append(
            _dumps(
                {
                    "query_id": query_id,
                    "target_id": item_ids[q.target],
                    "conditions": q.conditions,
                    "true_positives": [item_ids[i] for i in q.true_positives],
                    "labelled_positives": [item_ids[i] for i in labelled],
                    "false_negatives": [item_ids[i] for i in q.false_negatives],
                    "wrong_positives": [item_ids[i] for i in sorted(wrong)],
                    "wrong_positive_violations": {item_ids[i]: wrong[i] for i in sorted(wrong)},
                    "bad": q.bad,
                    "source": q.source,
                    "group": q.group,
                    "single_modality": q.single_modality,
                }
            )
        )
    truth_lines.extend(_dumps(row) for row in copy_truth(copies, item_ids))
    _write_files(
        out_dir,
        {
            "items.jsonl": item_lines,
            "queries.jsonl": query_lines,
            "qrels.tsv": qrels_lines,
            "truth.jsonl": truth_lines,
            "dataset.json": [json.dumps({"settings": DATASET_SETTINGS}, sort_keys=True)],
        },
    )
    summary = DemoSummary(
        out_dir=out_dir,
        n_items=n_items,
        n_queries=len(queries),
        n_qrels=len(qrels_lines) - 1,
        n_false_negatives=n_false_negatives,
        n_wrong_positives=n_wrong_positives,
        n_bad_queries=sum(q.bad is not None for q in queries),
        n_groups=len({q.group for q in queries if q.group is not None}),
        n_single_modality=sum(q.single_modality is not None for q in queries),
        n_copies=len(copies),
    )
    finished = time.perf_counter()
    logger.info(
        "demo bundle in %s: %d items, %d queries, %d qrels (%d false negatives, %d wrong positives, "
        "%d bad queries, %d groups); plan %.1fs, render %.1fs (%d workers), write %.1fs",
        out_dir,
        summary.n_items,
        summary.n_queries,
        summary.n_qrels,
        summary.n_false_negatives,
        summary.n_wrong_positives,
        summary.n_bad_queries,
        summary.n_groups,
        planned - started,
        rendered - planned,
        workers,
        finished - rendered,
    )
    return summary
