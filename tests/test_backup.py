"""Backups of a live SQLite database: one consistent snapshot, taken while annotators submit.

A backup made in the middle of a stream of submits is a valid database (integrity check, foreign
keys, the cross-table consistency queries of tests/test_crash.py) holding every submission
acknowledged before it started, each one whole. Refusals say what to do instead (pg_dump for
PostgreSQL, a new name for an existing file).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bench import bench_load
from db import migrate
from db.backup import BackupError, backup_before_upgrade, backup_sqlite, pre_upgrade_backup_path
from db.models import Submission
from db.session import Database, dispose_engine
from services.core import auth
from services.datasets.assignment import assign
from tests.test_crash import consistency_problems, sqlite_integrity


def _tokens(db: Database) -> set[str]:
    with db.read() as s:
        return set(s.scalars(select(Submission.client_token)))


@pytest.mark.timeout(180)
def test_backup_during_submits_holds_everything_committed_before_it(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "_hasher", bench_load.CHEAP_HASHER)
    bench_load.build_dataset(sqlite_db, tmp_path / "bundle", "live", n_queries=60)
    names = bench_load.add_annotators(sqlite_db, 4, hasher=bench_load.CHEAP_HASHER)
    assign(sqlite_db, "live", overlap=2)
    run = bench_load.LoadRun()
    writer = threading.Thread(
        target=bench_load.run_annotators,
        args=(sqlite_db, "live", names),
        kwargs={"time_limit_s": 120, "run": run},
    )
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while len(run.acks) < 20:
            assert time.monotonic() < deadline and writer.is_alive(), "the annotators did not get going"
            time.sleep(0.005)
        with run.lock:
            committed_before = set(run.acks)
        report = backup_sqlite(sqlite_db.url, tmp_path / "copies" / "live.db")
    finally:
        writer.join(timeout=150)
    assert not writer.is_alive()
    assert run.user_errors == [] and run.unfinished == [] and run.problems == []
    assert report.path == tmp_path / "copies" / "live.db" and report.bytes > 0
    assert not list(report.path.parent.glob(".*partial*"))  # no temporary file left behind

    assert sqlite_integrity(f"sqlite:///{report.path}") == ("ok", [])
    assert not Path(f"{report.path}-wal").exists()  # one self-contained file
    backup_url = f"sqlite:///{report.path}"
    try:
        copy = Database(backup_url)
        assert migrate.current_revision(backup_url) == migrate.head_revision()
        in_copy = _tokens(copy)
        assert committed_before <= in_copy, "a submission acknowledged before the backup is missing"
        assert in_copy <= set(run.acks)  # and nothing its annotator was not told about in the end
        assert consistency_problems(copy) == []  # each submission whole: a snapshot, not a smear
    finally:
        dispose_engine(backup_url)
    live = _tokens(sqlite_db)
    assert len(live) == 120 and len(in_copy) < len(live)  # the writers went on during and after it


def test_backup_refusals_say_what_to_do(sqlite_db: Database, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite("postgresql+psycopg://qrels@db.example/qrels", tmp_path / "x.db")
    with pytest.raises(BackupError, match="not a SQLite database file"):
        backup_sqlite("sqlite://", tmp_path / "x.db")
    missing = tmp_path / "nowhere" / "gone.db"
    with pytest.raises(BackupError, match="no SQLite database at"):
        backup_sqlite(f"sqlite:///{missing}", tmp_path / "x.db")
    assert not missing.exists() and not missing.parent.exists()  # nothing created where it looked

    existing = tmp_path / "taken.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(BackupError, match="exists already"):
        backup_sqlite(sqlite_db.url, existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(BackupError, match="exists already"):  # the database itself, too
        backup_sqlite(sqlite_db.url, Path(sqlite_db.url.removeprefix("sqlite:///")))
    assert not (tmp_path / "x.db").exists()


def test_backup_before_upgrade_only_when_there_is_something_to_upgrade(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = migrate.head_revision()
    assert backup_before_upgrade(sqlite_db.url) is None  # at head already
    assert backup_before_upgrade("postgresql+psycopg://qrels@db.example/qrels") is None
    assert backup_before_upgrade(f"sqlite:///{tmp_path / 'new.db'}") is None  # nothing yet
    assert not (tmp_path / "new.db").exists()

    monkeypatch.setattr(migrate, "head_revision", lambda: "9999_future")  # a newer release
    report = backup_before_upgrade(sqlite_db.url)
    assert report is not None
    assert report.path.parent == tmp_path / "backups"
    assert report.path.name.startswith(f"app-{datetime.now(UTC):%Y%m%d}")
    assert report.path.name.endswith(f"-before-upgrade-from-{head}.db")
    assert sqlite_integrity(f"sqlite:///{report.path}") == ("ok", [])
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (
        pre_upgrade_backup_path(sqlite_db.url, head, when).name
        == f"app-20300102T030405Z-before-upgrade-from-{head}.db"
    )


# --------------------------------------------------------------------------- the CLI commands


def test_cli_db_backup(sqlite_db: Database, tmp_path: Path) -> None:
    from cli.main import app

    runner = CliRunner()
    dest = tmp_path / "cli-copy.db"
    ok = runner.invoke(app, ["db", "backup", str(dest)])
    assert ok.exit_code == 0, ok.output
    assert sqlite_integrity(f"sqlite:///{dest}") == ("ok", [])
    again = runner.invoke(app, ["db", "backup", str(dest)])
    assert again.exit_code == 1 and "exists already" in again.output


def test_cli_db_upgrade_backs_up_first(sqlite_db: Database, tmp_path: Path, monkeypatch) -> None:
    from cli.main import app

    with sqlite_db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 0
    monkeypatch.setattr(migrate, "upgrade", lambda url, revision="head": None)  # the newer release's
    monkeypatch.setattr(migrate, "head_revision", lambda: "9999_future")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    backups = list((tmp_path / "backups").glob("app-*-before-upgrade-from-*.db"))
    assert len(backups) == 1 and str(backups[0]) in result.output
