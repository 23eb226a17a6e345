"""Uploaded bundle zips: limits on size and type, and extraction that cannot escape or explode."""

from __future__ import annotations

import io
import stat
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db.session import Database
from services.core.errors import BundleError
from services.ingest.importer import import_bundle
from services.ingest.uploads import MAX_UPLOAD_BYTES, extract_bundle_zip
from tests.bundles import make_bundle
from tests.conftest import make_users
from ui.session import KEY_USER


def zip_folder(folder: Path, prefix: str = "") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, prefix + path.relative_to(folder).as_posix())
    return out.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def test_a_zipped_bundle_imports(sqlite_db: Database, tmp_path: Path) -> None:
    data = zip_folder(make_bundle(tmp_path / "b"), prefix="mybundle/")
    folder = extract_bundle_zip(data, tmp_path / "uploads")
    assert (folder / "items.jsonl").is_file()
    assert import_bundle(sqlite_db, folder, "zipped").n_items == 6


def test_symlink_entry_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(BundleError, match="symbolic link"):
        extract_bundle_zip(out.getvalue(), tmp_path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 this is no zip", "not a zip file"),
        (b"plain text", "not a zip file"),
        (zip_of({"../evil.txt": b"x", "items.jsonl": b""}), "escapes the bundle"),
        (zip_of({"/etc/cron.d/evil": b"x"}), "escapes the bundle"),
        (zip_of({"a/../../evil": b"x"}), "escapes the bundle"),
        (zip_of({"bomb.bin": b"\0" * (300 * 1024 * 1024)}), "zip bomb"),
        (zip_of({"readme.txt": b"hello"}), "no items.jsonl"),
    ],
    ids=["bad-magic", "text", "dotdot", "absolute", "nested-dotdot", "bomb", "no-bundle"],
)
def test_hostile_zips_are_refused_and_leave_nothing(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        extract_bundle_zip(data, tmp_path / "uploads")
    assert not (tmp_path / "evil.txt").exists()
    assert list((tmp_path / "uploads").glob("*")) == [] if (tmp_path / "uploads").exists() else True


def test_a_50_mb_upload_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="the limit is 50 MB"):
        extract_bundle_zip(b"\0" * (MAX_UPLOAD_BYTES + 1), tmp_path)


def test_upload_widget_limits(sqlite_db: Database, tmp_path: Path, data_dir: Path) -> None:
    """The widget takes only .zip, within the server's 50 MB, and imports it."""
    config = (Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text()
    assert "maxUploadSize = 50" in config and "enableXsrfProtection = true" in config
    people = make_users(sqlite_db)
    at = AppTest.from_file("../pages/datasets.py", default_timeout=60)
    at.session_state[KEY_USER] = people["admin"]
    at.session_state["qs_last_seen"] = time.time()
    at.run()
    uploader = at.get("file_uploader")[0]
    assert uploader.proto.type == [".zip"]
    assert uploader.proto.max_upload_size_mb == 50
