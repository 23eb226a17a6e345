"""The native bundle: ``items.jsonl``, ``queries.jsonl``, ``qrels.tsv`` and ``images/`` (``import OUT`` reads it back)."""

from __future__ import annotations

from typing import Any

from db.enums import ImageStatus
from services.export.folder import Folder
from services.export.split import Split, ref_image_path
from services.formats.qrels import QRELS_HEADER


def write_native(folder: Folder, split: Split) -> list[str]:
    warnings = []
    items = []
    for it in split.pool.items:
        image = split.pool.item_image[it.ext_id] or it.image_ref
        if split.pool.item_image[it.ext_id] is None and it.image_status != ImageStatus.REMOTE:
            warnings.append(
                f"item {it.ext_id} has no image file; items.jsonl keeps its reference {it.image_ref!r}, "
                "so the bundle re-imports only once that image is added"
            )
        items.append(
            {
                "id": it.ext_id,
                "title": it.title,
                "text": it.text,
                "image": image,
                "category": it.category,
                "language": it.language,
                "attributes": it.attributes or {},
            }
        )
    folder.jsonl("items.jsonl", items)
    queries = []
    for q in split.queries:
        row: dict[str, Any] = {
            "id": q.ext_id,
            "text": q.text,
            "category": q.category,
            "language": q.language,
            "source": q.source,
            "group": q.group_key,
        }
        if refs := split.ref_items(q):
            row["ref_items"] = refs
        images = [ref_image_path(r) or r.image_ref for r in split.ref_images(q)]
        if images:
            row["ref_images"] = images
        queries.append({k: v for k, v in row.items() if v is not None})
    folder.jsonl("queries.jsonl", queries)
    folder.text(
        "qrels.tsv",
        "\t".join(QRELS_HEADER) + "\n" + "".join(f"{q}\t{i}\t{s}\n" for q, i, s in split.qrels()),
    )
    if len(warnings) > 5:
        warnings = [*warnings[:5], f"... and {len(warnings) - 5} more items without an image file"]
    return warnings
