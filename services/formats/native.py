"""The native bundle format and the pieces every reader shares: typed record fields, image references.

A native bundle is ``items.jsonl``, ``queries.jsonl``, ``qrels.tsv`` and ``images/``, and may carry
the dataset's settings in ``dataset.json`` (``{"settings": {"clip_model": ..., ...}}``, see
:func:`read_bundle_settings`); :func:`read_native_bundle` parses it into a
:class:`~services.formats.records.ParsedBundle`.
:class:`Fields` reads one record's fields with errors naming the file, line and field, and
:func:`resolve_image` turns an image reference into an :class:`~services.formats.records.ImageSource`
without letting it escape the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from services.core.errors import BundleError
from services.formats.limits import MAX_ID_CHARS, MAX_QUERY_CHARS, MAX_SHORT_CHARS, MAX_TEXT_CHARS, ZERO_WIDTH
from services.formats.lines import iter_jsonl
from services.formats.qrels import read_qrels_tsv
from services.formats.records import ImageSource, ItemRecord, ParsedBundle, QueryRecord


class Fields:
    """Typed access to one record's fields, raising errors that name the file, line and field."""

    def __init__(self, obj: dict[str, Any], file: str, line: int | None) -> None:
        self.obj, self.file, self.line = obj, file, line

    def fail(self, message: str) -> BundleError:
        return BundleError(message, file=self.file, line=self.line)

    def ident(self, key: str, *, required: bool = True) -> str | None:
        """An id: a non-empty string or an integer (benchmarks use both), returned as a string."""
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise self.fail(f"missing field {key!r}")
            return None
        value = self.obj[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(f"field {key!r} must be a string or an integer id, got {type(value).__name__}")
        value = str(value).strip()
        if not value:
            raise self.fail(f"field {key!r} is empty")
        if len(value) > MAX_ID_CHARS or any(c in value for c in "\t\n\r"):
            raise self.fail(
                f"field {key!r} must be at most {MAX_ID_CHARS} characters with no tabs or newlines"
            )
        return value

    def text(self, key: str, *, required: bool = True, max_chars: int = MAX_TEXT_CHARS) -> str | None:
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise self.fail(f"missing field {key!r}")
            return None
        value = self.obj[key]
        if not isinstance(value, str):
            raise self.fail(f"field {key!r} must be a string, got {type(value).__name__}")
        if len(value) > max_chars:
            raise self.fail(f"field {key!r} is {len(value):,} characters; the limit is {max_chars:,}")
        return value

    def short(self, key: str) -> str | None:
        value = self.text(key, required=False, max_chars=MAX_SHORT_CHARS)
        return value.strip() or None if value is not None else None

    def str_list(self, key: str) -> list[str]:
        if key not in self.obj or self.obj[key] is None:
            return []
        value = self.obj[key]
        if not isinstance(value, list) or not all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
        ):
            raise self.fail(f"field {key!r} must be a list of strings")
        return [str(v) for v in value]

    def mapping(self, key: str) -> dict[str, Any]:
        if key not in self.obj or self.obj[key] is None:
            return {}
        value = self.obj[key]
        if not isinstance(value, dict):
            raise self.fail(f"field {key!r} must be a JSON object, got {type(value).__name__}")
        return value


def check_query_text(fields: Fields, text: str) -> str:
    if not text.strip(ZERO_WIDTH + " \t\r\n"):
        raise fields.fail("query text is empty (or only invisible characters)")
    if len(text) > MAX_QUERY_CHARS:
        raise fields.fail(f"query text is {len(text):,} characters; the limit is {MAX_QUERY_CHARS:,}")
    return text


# --------------------------------------------------------------------------- image references


def _within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def resolve_image(
    ref: Any,
    *,
    root: Path,
    allowed_roots: tuple[Path, ...] = (),
    file: str,
    line: int | None,
    allow_url: bool = True,
    field_name: str = "image",
) -> ImageSource:
    """Turn an image reference into an :class:`ImageSource`, refusing anything unsafe.

    Relative paths must stay inside the bundle; absolute paths must lie inside the bundle or one
    of ``allowed_roots``; http(s) URLs are kept as references (never fetched).
    """
    if not isinstance(ref, str) or not ref.strip():
        raise BundleError(f"field {field_name!r} must be a non-empty path string", file=file, line=line)
    ref = ref.strip()
    scheme = urlparse(ref).scheme.lower()
    if scheme in ("http", "https"):
        if not allow_url:
            raise BundleError(
                f"field {field_name!r} is a URL ({ref[:80]}); give a path to an image file inside the bundle",
                file=file,
                line=line,
            )
        return ImageSource("url", ref, None, file, line)
    if len(scheme) > 1:  # file://, data:, ftp:, ... (one letter would be a Windows drive)
        raise BundleError(
            f"field {field_name!r} uses the {scheme}: scheme; give a path relative to the bundle",
            file=file,
            line=line,
        )
    root = root.resolve()
    given = Path(ref)
    path = (given if given.is_absolute() else root / given).resolve()
    if given.is_absolute():
        if not (_within(path, root) or any(_within(path, r) for r in allowed_roots)):
            raise BundleError(
                f"absolute image path {ref!r} is outside the bundle and outside the allowed roots; "
                "copy the image into the bundle or add its folder to QRELS_ALLOWED_ROOTS",
                file=file,
                line=line,
            )
    elif not _within(path, root):
        raise BundleError(
            f"image path {ref!r} escapes the bundle folder; image paths must stay inside the bundle",
            file=file,
            line=line,
        )
    return ImageSource("file", ref, path, file, line)


# --------------------------------------------------------------------------- the native format

SETTINGS_FILE = "dataset.json"
# Settings that name a file: a relative path in dataset.json is relative to the bundle.
_PATH_SETTINGS = ("truth_path", "clip_pretrained")


def read_bundle_settings(root: Path) -> dict[str, Any]:
    """The dataset settings in a bundle's optional ``dataset.json``, as given (the import checks them).

    ``{"settings": {"clip_model": "qrels-demo-clip", "clip_pretrained": "demo", "truth_path":
    "truth.jsonl"}}``: a relative ``truth_path``, and a relative ``clip_pretrained`` that names a
    file in the bundle, become absolute paths inside the bundle.

    Raises:
        BundleError: the file is not a JSON object with a ``settings`` object, or a relative path
            leaves the bundle.
    """
    path = root / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"not valid JSON: {e}", file=SETTINGS_FILE) from e
    if not isinstance(obj, dict) or not isinstance(obj.get("settings", {}), dict):
        raise BundleError(
            'must be a JSON object like {"settings": {"clip_model": "ViT-B-32"}}', file=SETTINGS_FILE
        )
    settings = dict(obj.get("settings") or {})
    bundle = root.resolve()
    for key in _PATH_SETTINGS:
        value = settings.get(key)
        if not isinstance(value, str) or not value.strip() or Path(value).is_absolute():
            continue
        resolved = (bundle / value).resolve()
        if key == "clip_pretrained" and not resolved.is_file():
            continue  # an open_clip tag, not a file
        if not _within(resolved, bundle):
            raise BundleError(f"setting {key!r} path {value!r} leaves the bundle folder", file=SETTINGS_FILE)
        settings[key] = str(resolved)
    return settings


def read_native_bundle(root: Path, *, allowed_roots: tuple[Path, ...] = ()) -> ParsedBundle:
    """Parse a native bundle: ``items.jsonl``, ``queries.jsonl``, ``qrels.tsv``, ``images/``."""
    from services.formats.common import ImageRefs  # common builds on this module

    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"bundle folder {str(root)!r} does not exist or is not a folder")
    # Each image folder resolved once, not every image path: 100k images, 100k lstat calls.
    item_images = ImageRefs(root, allowed_roots, allow_url=True)
    query_images = ImageRefs(root, allowed_roots, allow_url=False)

    items: list[ItemRecord] = []
    for line, obj in iter_jsonl(root / "items.jsonl", "items.jsonl"):
        f = Fields(obj, "items.jsonl", line)
        image_ref = obj.get("image")
        if "image" not in obj:
            raise f.fail("missing field 'image'")
        items.append(
            ItemRecord(
                ext_id=f.ident("id") or "",
                title=f.text("title") or "",
                text=f.text("text") or "",
                image=item_images(image_ref, file=f.file, line=line, field_name="image"),
                category=f.short("category"),
                language=f.short("language"),
                attributes=f.mapping("attributes"),
                file=f.file,
                line=line,
            )
        )

    queries: list[QueryRecord] = []
    for line, obj in iter_jsonl(root / "queries.jsonl", "queries.jsonl"):
        f = Fields(obj, "queries.jsonl", line)
        ref_images = [
            query_images(ref, file=f.file, line=line, field_name="ref_images")
            for ref in f.str_list("ref_images")
        ]
        queries.append(
            QueryRecord(
                ext_id=f.ident("id") or "",
                text=check_query_text(f, f.text("text") or ""),
                ref_items=f.str_list("ref_items"),
                ref_images=ref_images,
                category=f.short("category"),
                language=f.short("language"),
                source=f.short("source"),
                group=f.ident("group", required=False),
                file=f.file,
                line=line,
            )
        )

    qrels = read_qrels_tsv(root / "qrels.tsv", "qrels.tsv")
    return ParsedBundle(root, "native", items, queries, qrels, settings=read_bundle_settings(root))
