"""Images: validation, a content-addressed store of originals, and thumbnails made once.

Pages only ever open thumbnails (longest side 256 px) or, on zoom, the stored original; nothing
decodes a full-size image during a page rerun.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from models.hashing import sha256_bytes

THUMB_SIZE = 256
# Images above this many pixels are refused (decompression bombs); 40 MP covers real photos.
MAX_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 50 * 1024 * 1024
FORMAT_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}

# Never accept a truncated file silently.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageProblem(ValueError):
    """The file is not a usable image; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    ext: str
    width: int
    height: int


def inspect_image(data: bytes) -> ImageInfo:
    """Decode ``data`` fully and describe it, or raise :class:`ImageProblem`."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"image is {len(data) / 1e6:.0f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise ImageProblem(
                    f"image is {width}x{height} pixels, more than the {MAX_PIXELS:,} allowed "
                    "(a decompression bomb or an oversized scan); resize it"
                )
            if fmt not in FORMAT_EXT:
                raise ImageProblem(f"image format {fmt or 'unknown'} is not supported; use JPEG, PNG or WebP")
            im.load()
    except Image.DecompressionBombError as e:
        raise ImageProblem(f"image is too large to decode safely (decompression bomb): {e}") from e
    except UnidentifiedImageError as e:
        raise ImageProblem("file is not an image Pillow can read (is it really a JPEG/PNG?)") from e
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageProblem):
            raise
        raise ImageProblem(f"image is corrupt or truncated ({e})") from e
    return ImageInfo(sha256_bytes(data), FORMAT_EXT[fmt], width, height)


def make_thumbnail(data: bytes, size: int = THUMB_SIZE) -> bytes:
    """A JPEG of at most ``size`` px on its longest side."""
    with Image.open(io.BytesIO(data)) as im:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))  # decode at reduced scale: much faster for big JPEGs
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.BICUBIC)
        out = io.BytesIO()
        im.save(out, format="JPEG", quality=85, optimize=True)
        return out.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class MediaStore:
    """Originals under ``media/ab/<sha256>.<ext>``, thumbnails under ``thumbs/ab/<sha256>.jpg``.

    Content-addressed, so a file is written once however many items or datasets share it, and
    writes are idempotent: a failed import leaves at most unreferenced files, never bad ones.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    def original_path(self, sha256: str, ext: str) -> Path:
        return self.data_dir / "media" / sha256[:2] / f"{sha256}.{ext}"

    def thumb_path(self, sha256: str) -> Path:
        return self.data_dir / "thumbs" / sha256[:2] / f"{sha256}.jpg"

    def put(self, data: bytes, info: ImageInfo) -> None:
        """Store the original and its thumbnail unless they are there already."""
        original = self.original_path(info.sha256, info.ext)
        if not original.exists():
            _atomic_write(original, data)
        thumb = self.thumb_path(info.sha256)
        if not thumb.exists():
            _atomic_write(thumb, make_thumbnail(data))
