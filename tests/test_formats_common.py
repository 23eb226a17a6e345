"""Shared pieces of the benchmark readers: JSON arrays read record by record with the line each
record starts on, and fast image references that follow ``resolve_image``'s rules exactly.

Also the helpers the other ``test_formats_*`` modules use (the shared benchmark files, table counts).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Dataset, Item, Qrel, Query, QueryRef, QueryRevision
from db.session import Database
from services.core.errors import BundleError
from services.formats.common import ImageRefs, dataset_root, iter_json_array, pick_split
from services.formats.native import resolve_image

SHARED_FORMATS = Path(__file__).resolve().parents[2] / "shared" / "formats"


def shared(*parts: str) -> Path:
    """A path under the shared benchmark files; skips the test when they are not there."""
    if not SHARED_FORMATS.is_dir():
        pytest.skip("../shared/formats is not present: the real benchmark files live there")
    return SHARED_FORMATS.joinpath(*parts)


def load_json(*parts: str):
    return json.loads(shared(*parts).read_text(encoding="utf-8"))


def copy_shared(folder: str, names: list[str], dest: Path) -> Path:
    """Copy some shared files into a scratch folder (to break them without touching the originals)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(shared(folder, name), dest / name)
    return dest


def table_counts(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {
            model.__tablename__: s.scalar(select(func.count()).select_from(model)) or 0
            for model in (Dataset, Item, Query, QueryRef, QueryRevision, Qrel)
        }


# --------------------------------------------------------------------------- JSON arrays


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_records_carry_their_number_and_starting_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", '[\n  {"a": 1},\n  {\n    "b": [1,\n 2]\n  }, {"c": 3}\n]\n')
    assert list(iter_json_array(path, "a.json")) == [
        (1, 2, {"a": 1}),
        (2, 3, {"b": [1, 2]}),
        (3, 6, {"c": 3}),
    ]
    assert list(iter_json_array(write(tmp_path / "e.json", " [ ] "), "e.json")) == []


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ('[{"a": 1},\n{"a": 2', "record 2: invalid JSON", 2),
        ('[{"a": 1},\n{"a": "tw', "the file looks truncated", 2),
        ('[{"a": 1},\n{"a": 2}', "without closing the array (the file looks truncated)", 2),
        ('[{"a": 1},\n{"a": 2},', "before record 3 (the file looks truncated)", 2),
        ('[{"a": 1}\n{"a": 2}]', "expected ',' or ']' after record 1", 2),
        ('[{"a": 1}]\n]', "extra data after the closing ']'", 2),
        ('{"a": 1}', "expected a JSON array of records", 1),
        ('[{"a": 1},\n\n[1, 2]]', "record 2: expected a JSON object, got list", 3),
        ("", "the file is empty", None),
    ],
)
def test_broken_arrays_name_the_record_and_line(tmp_path: Path, text: str, message: str, line) -> None:
    path = write(tmp_path / "x.json", text)
    with pytest.raises(BundleError, match=re.escape(message)) as info:
        list(iter_json_array(path, "x.json"))
    assert (info.value.file, info.value.line) == ("x.json", line)


def test_non_utf8_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_bytes(b'[{"a": "caf\xe9"}]')
    with pytest.raises(BundleError, match="not valid UTF-8"):
        list(iter_json_array(tmp_path / "x.json", "x.json"))
    with pytest.raises(BundleError, match="file not found"):
        list(iter_json_array(tmp_path / "nope.json", "nope.json"))


# --------------------------------------------------------------------------- image references


@pytest.mark.parametrize(
    "ref",
    [
        "images/a.jpg",
        "./dev/dev-1-img0.png",
        "a.jpg",
        "deep/er/x.png",
        "images/../images/a.jpg",
        " images/spaced.jpg ",
    ],
)
def test_image_refs_match_resolve_image(tmp_path: Path, ref: str) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"x")
    fast = ImageRefs(tmp_path)(ref, file="f", line=3, field_name="image")
    slow = resolve_image(ref, root=tmp_path, file="f", line=3, allow_url=False)
    assert fast == slow


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("../outside.jpg", "escapes the bundle"),
        ("images/../../outside.jpg", "escapes the bundle"),
        ("/etc/passwd", "outside the bundle"),
        ("file:///etc/passwd", "scheme"),
        ("https://example.com/a.jpg", "is a URL"),
        ("", "non-empty path"),
    ],
)
def test_image_refs_refuse_what_resolve_image_refuses(tmp_path: Path, ref: str, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        ImageRefs(tmp_path)(ref, file="f", line=1, field_name="image")


def test_a_symlink_out_of_the_dataset_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (root / "images" / "a.jpg").symlink_to(tmp_path / "secret.jpg")
    with pytest.raises(BundleError, match="escapes the bundle"):
        ImageRefs(root)("images/a.jpg", file="f", line=1, field_name="image")


def test_urls_are_kept_when_allowed(tmp_path: Path) -> None:
    src = ImageRefs(tmp_path, allow_url=True)(
        "https://example.com/a.jpg", file="f", line=1, field_name="image"
    )
    assert (src.kind, src.ref) == ("url", "https://example.com/a.jpg")


# --------------------------------------------------------------------------- locating


def test_dataset_root_climbs_layout_folders_only(tmp_path: Path) -> None:
    (tmp_path / "CIRCO" / "annotations").mkdir(parents=True)
    assert (
        dataset_root(tmp_path / "CIRCO" / "annotations" / "val.json", ("annotations",))
        == (tmp_path / "CIRCO").resolve()
    )
    assert dataset_root(tmp_path / "CIRCO" / "val.json", ("annotations",)) == (tmp_path / "CIRCO").resolve()


def test_pick_split() -> None:
    assert pick_split(None, None, "val", ("val", "test")) == "val"
    assert pick_split(None, "test", "val", ("val", "test")) == "test"
    with pytest.raises(BundleError, match="unknown split 'dev'; choose one of val, test"):
        pick_split("dev", None, "val", ("val", "test"))
    with pytest.raises(BundleError, match="the file is the 'test' split but split='val'"):
        pick_split("val", "test", "val", ("val", "test"))
