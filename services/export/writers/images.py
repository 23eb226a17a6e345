"""The ``images/`` folder of an export: every image a written format points at, copied by content name.

The native bundle refers to ``images/<sha256>.<ext>`` from the root; ``beir/`` and ``mbeir/``
refer to the same files from their own folder (``../images/...``).
"""

from __future__ import annotations

from services.core.errors import NotFoundError
from services.core.media import MediaStore
from services.export.folder import Folder
from services.export.split import Split, ref_image_path


def copy_images(folder: Folder, split: Split, store: MediaStore) -> list[str]:
    warnings = []
    for it in split.pool.items:
        rel = split.pool.item_image[it.ext_id]
        if rel is None:
            continue
        src = store.original_path(it.image_sha256, it.image_ext or "jpg")
        if not src.is_file():
            raise NotFoundError(
                f"the image of item {it.ext_id!r} is not in the media store ({src}); "
                "check QRELS_DATA_DIR or import the dataset again"
            )
        folder.copy(src, rel)
    for q in split.queries:
        for ref in split.ref_images(q):
            rel = ref_image_path(ref)
            if rel is None:
                warnings.append(f"query {q.ext_id}: a reference image is missing ({ref.image_ref})")
                continue
            src = store.original_path(ref.image_sha256, ref.image_ext or "jpg")
            if not src.is_file():
                raise NotFoundError(
                    f"a reference image of query {q.ext_id!r} is not in the media store ({src}); "
                    "check QRELS_DATA_DIR or import the dataset again"
                )
            folder.copy(src, rel)
    return warnings


def relative_image(path: str | None) -> str | None:
    """A root-relative image path as seen from a format folder (beir/, mbeir/)."""
    return f"../{path}" if path else None
