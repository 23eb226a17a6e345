"""Bundles uploaded as a zip: size and type limits, and an extraction that cannot escape or explode."""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from services.core.errors import BundleError

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # the same limit as .streamlit/config.toml's maxUploadSize
MAX_UNZIPPED_BYTES = 500 * 1024 * 1024
MAX_FILES = 200_000
MAX_RATIO = 200  # uncompressed / compressed size of one member: more is a zip bomb


def _bundle_root(folder: Path) -> Path:
    """The folder holding items.jsonl: the zip's root or its single top-level folder."""
    if (folder / "items.jsonl").is_file():
        return folder
    children = [p for p in folder.iterdir() if p.name != "__MACOSX"]
    if len(children) == 1 and children[0].is_dir() and (children[0] / "items.jsonl").is_file():
        return children[0]
    raise BundleError(
        "the zip holds no items.jsonl at its top level (or in one top-level folder)", file="upload"
    )


def extract_bundle_zip(data: bytes, dest_parent: Path) -> Path:
    """Check and extract an uploaded bundle zip into a new folder under ``dest_parent``.

    Raises:
        BundleError: too large, not a zip, an entry escaping the folder (``../``, absolute
            paths, links), too many files, or a member that decompresses far beyond its size.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise BundleError(
            f"the upload is {len(data) / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB "
            "(import larger bundles from a folder on the server)",
            file="upload",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise BundleError(
            "the upload is not a zip file; zip the bundle folder and upload the .zip", file="upload"
        ) from e
    with archive:
        members = archive.infolist()
        if len(members) > MAX_FILES:
            raise BundleError(
                f"the zip holds {len(members):,} entries; the limit is {MAX_FILES:,}", file="upload"
            )
        total = 0
        for m in members:
            path = PurePosixPath(m.filename)
            if (
                path.is_absolute()
                or ".." in path.parts
                or m.filename.startswith(("/", "\\"))
                or ":" in path.parts[0]
            ):
                raise BundleError(f"zip entry {m.filename!r} escapes the bundle folder", file="upload")
            if (m.external_attr >> 16) & 0o170000 == 0o120000:
                raise BundleError(
                    f"zip entry {m.filename!r} is a symbolic link; links are not allowed", file="upload"
                )
            total += m.file_size
            if m.compress_size and m.file_size / m.compress_size > MAX_RATIO and m.file_size > 1024 * 1024:
                raise BundleError(
                    f"zip entry {m.filename!r} decompresses {m.file_size / m.compress_size:.0f}x: a zip bomb",
                    file="upload",
                )
        if total > MAX_UNZIPPED_BYTES:
            raise BundleError(
                f"the zip unpacks to {total / 2**20:.0f} MB; the limit is {MAX_UNZIPPED_BYTES // 2**20} MB",
                file="upload",
            )
        dest_parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=dest_parent))
        try:
            for m in members:
                target = folder / m.filename
                if m.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(m) as src, target.open("wb") as out:
                    # Stream with a cap: the header's sizes are the archive's word, not a promise.
                    written = 0
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > m.file_size:
                            raise BundleError(
                                f"zip entry {m.filename!r} is larger than its header says", file="upload"
                            )
                        out.write(chunk)
            return _bundle_root(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
