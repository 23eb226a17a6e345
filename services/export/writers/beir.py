"""BEIR: ``beir/corpus.jsonl``, ``beir/queries.jsonl``, ``beir/qrels/test.tsv`` (images as ``../images/...``)."""

from __future__ import annotations

from db.enums import ImageStatus
from services.export.folder import Folder
from services.export.split import Split, ref_image_path
from services.export.writers.images import relative_image
from services.formats.qrels import QRELS_HEADER


def write_beir(folder: Folder, split: Split) -> None:
    folder.jsonl(
        "beir/corpus.jsonl",
        (
            {
                "_id": it.ext_id,
                "title": it.title,
                "text": it.text,
                "image": relative_image(split.pool.item_image[it.ext_id])
                or (it.image_ref if it.image_status == ImageStatus.REMOTE else None),
                "metadata": {"category": it.category, "language": it.language},
            }
            for it in split.pool.items
        ),
    )
    folder.jsonl(
        "beir/queries.jsonl",
        (
            {
                "_id": q.ext_id,
                "text": q.text,
                "metadata": {
                    "category": q.category,
                    "language": q.language,
                    "ref_items": split.ref_items(q),
                    "ref_images": [relative_image(ref_image_path(r)) for r in split.ref_images(q)],
                },
            }
            for q in split.queries
        ),
    )
    folder.text(
        "beir/qrels/test.tsv",
        "\t".join(QRELS_HEADER) + "\n" + "".join(f"{q}\t{i}\t{s}\n" for q, i, s in split.qrels()),
    )
