"""Images: validation, a content-addressed store of originals, and thumbnails made once.

Pages only ever open thumbnails (longest side 256 px) or, on zoom, the stored original; nothing
decodes a full-size image during a page rerun.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import time
import uuid
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


def read_image(data: bytes, size: int = THUMB_SIZE, *, sha256: str | None = None) -> tuple[ImageInfo, bytes]:
    """Check ``data`` (size, pixel count, format, a full decode: missing, truncated or corrupt data
    fails) and make its thumbnail, decoding it once.

    A JPEG is decoded at the smallest DCT scale that still covers the thumbnail (``draft``): the
    whole stream is still read, so a truncated or corrupt file fails as in a full decode, at a
    fraction of the work for a large photo. A JPEG already within the thumbnail size (RGB or
    grey) is its own thumbnail; anything else is resized and saved as a JPEG.

    Args:
        data: the file's bytes.
        size: the thumbnail's longest side.
        sha256: the bytes' hash when the caller has it already.

    Returns:
        The image's description and the thumbnail's JPEG bytes.

    Raises:
        ImageProblem: the file is not a usable image (the message says why).
    """
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
            if fmt == "JPEG":
                im.draft("RGB", (size, size))
            im.load()
            if fmt == "JPEG" and max(width, height) <= size and im.mode in ("RGB", "L"):
                thumb = data
            else:
                thumb = _thumbnail(im, size)
    except Image.DecompressionBombError as e:
        raise ImageProblem(f"image is too large to decode safely (decompression bomb): {e}") from e
    except UnidentifiedImageError as e:
        raise ImageProblem("file is not an image Pillow can read (is it really a JPEG/PNG?)") from e
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageProblem):
            raise
        raise ImageProblem(f"image is corrupt or truncated ({e})") from e
    return ImageInfo(sha256 or sha256_bytes(data), FORMAT_EXT[fmt], width, height), thumb


def describe_image(data: bytes, *, sha256: str | None = None) -> ImageInfo:
    """The description of an image the media store holds already (checked when it was stored):
    its hash and header only, nothing decoded.

    Raises:
        ImageProblem: the header is not an image's.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (width, height) = im.format or "", im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageProblem(f"file is not an image Pillow can read ({e})") from e
    if fmt not in FORMAT_EXT:
        raise ImageProblem(f"image format {fmt or 'unknown'} is not supported; use JPEG, PNG or WebP")
    return ImageInfo(sha256 or sha256_bytes(data), FORMAT_EXT[fmt], width, height)


def _thumbnail(im: Image.Image, size: int) -> bytes:
    rgb = im.convert("RGB")
    rgb.thumbnail((size, size), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def make_thumbnail(data: bytes, size: int = THUMB_SIZE) -> bytes:
    """A JPEG of at most ``size`` px on its longest side."""
    with Image.open(io.BytesIO(data)) as im:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))  # decode at reduced scale: much faster for big JPEGs
        return _thumbnail(im, size)


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

    def has(self, info: ImageInfo) -> bool:
        """Whether the original and the thumbnail of ``info`` are stored."""
        return self.thumb_path(info.sha256).exists() and self.original_path(info.sha256, info.ext).exists()

    def put(self, data: bytes, info: ImageInfo, thumbnail: bytes | None = None) -> None:
        """Store the original and its thumbnail (``thumbnail``, or one made here) unless they are
        there already."""
        original = self.original_path(info.sha256, info.ext)
        if not original.exists():
            _atomic_write(original, data)
        thumb = self.thumb_path(info.sha256)
        if not thumb.exists():
            _atomic_write(thumb, thumbnail if thumbnail is not None else make_thumbnail(data))


STAGING_PREFIX = ".staging-"
_STALE_STAGING_S = 6 * 3600  # an import that died left its staging folder behind


class MediaStaging:
    """The new images of one import, written aside until every image of the bundle passed its
    check, then moved into the store at once (:meth:`commit`): a bundle refused on its last
    image leaves nothing behind (:meth:`discard`).

    Each image is still read and decoded once: what is staged is what the check produced.
    Thread-safe (the importer stages from several threads).
    """

    def __init__(self, store: MediaStore) -> None:
        self.store = store
        self.root = store.data_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        self._staged: dict[Path, Path] = {}  # final path -> staged path
        self._lock = threading.Lock()
        self._ready = False  # the staging folders exist
        _remove_stale_staging(store.data_dir)

    def _folders(self, root: Path) -> None:
        # Every folder a file can land in (two hex digits of its hash), made once, not per file.
        for top in ("media", "thumbs"):
            for n in range(256):
                (root / top / f"{n:02x}").mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, info: ImageInfo, thumbnail: bytes) -> None:
        """Stage the original and its thumbnail unless the store (or this staging) has them."""
        for final, content in (
            (self.store.original_path(info.sha256, info.ext), data),
            (self.store.thumb_path(info.sha256), thumbnail),
        ):
            if final.exists():
                continue
            with self._lock:
                if final in self._staged:
                    continue
                if not self._ready:
                    self._folders(self.root)
                    self._ready = True
                staged = self.root / final.relative_to(self.store.data_dir)
                self._staged[final] = staged
            staged.write_bytes(content)

    def commit(self) -> None:
        """Move every staged file into the store (renames in one file system)."""
        if self._staged:
            self._folders(self.store.data_dir)
        for final, staged in self._staged.items():
            os.replace(staged, final)
        self.discard()

    def discard(self) -> None:
        """Remove what is staged."""
        shutil.rmtree(self.root, ignore_errors=True)
        self._staged.clear()


def _remove_stale_staging(data_dir: Path) -> None:
    if not data_dir.is_dir():
        return
    now = time.time()
    for folder in data_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            if now - folder.stat().st_mtime > _STALE_STAGING_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass
