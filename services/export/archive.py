"""Where an export folder goes, and the folder as one zip.

The folder is built beside its destination and moved into place when complete
(:func:`place_folder`), replacing an earlier export only when asked; :func:`zip_export` packs a
finished folder byte-identically (fixed times, sorted entries).
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

from services.core.config import load_settings
from services.core.errors import NotFoundError, ValidationError
from services.export.folder import slug
from services.export.manifest import MANIFEST
from services.export.options import ExportOptions, utc_time

_ZIP_STORED = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".parquet"}


def place_folder(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished export into ``out``, replacing an earlier export only when asked."""
    if out.exists():
        if not out.is_dir():
            raise ValidationError(f"{out} is a file; give a folder for the export")
        if any(out.iterdir()):
            if not overwrite:
                raise ValidationError(f"{out} is not empty; choose a new folder or pass --overwrite")
            if not (out / MANIFEST).is_file():
                raise ValidationError(
                    f"{out} is not empty and holds no {MANIFEST}, so it is not an earlier export; "
                    "choose a new or empty folder"
                )
            shutil.rmtree(out)
        else:
            out.rmdir()
    os.replace(tmp, out)


def default_out_dir(
    dataset: str, options: ExportOptions, when: datetime, data_dir: Path | None = None
) -> Path:
    """``<data_dir>/exports/<dataset>/<time>-<options hash>``: the same state and options, one folder."""
    root = Path(data_dir or load_settings().data_dir) / "exports" / slug(dataset)
    return root / f"{utc_time(when).strftime('%Y%m%dT%H%M%SZ')}-{options.digest()}"


def zip_export(out_dir: Path) -> bytes:
    """The export folder as a zip, byte-identical for identical folders (fixed times, sorted)."""
    out_dir = Path(out_dir)
    if not (out_dir / MANIFEST).is_file():
        raise NotFoundError(f"{out_dir} holds no {MANIFEST}; it is not an export folder")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(out_dir).as_posix()
            info = zipfile.ZipInfo(f"{out_dir.name}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            stored = path.suffix.lower() in _ZIP_STORED
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
