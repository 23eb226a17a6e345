"""Consistent copies of a live SQLite database, through SQLite's online backup API.

The copy is one snapshot: the backup reads the whole database in a single step inside one read
transaction, so it holds exactly the transactions committed before it started, while annotators
keep writing (WAL readers never block writers). It is written to a temporary file next to the
destination, checked with ``PRAGMA integrity_check`` and only then renamed into place, so a
destination path either holds a whole, checked backup or nothing. PostgreSQL databases are backed
up with ``pg_dump``, which does the same for a server.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

BACKUP_DIR = "backups"  # next to the database file: where the pre-upgrade copies go


class BackupError(RuntimeError):
    """A backup cannot be made as asked; the message says what to do instead (the CLI prints it, exit 1)."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    bytes: int
    seconds: float


def _sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        name = parsed.database or "DBNAME"
        raise BackupError(
            "this is a PostgreSQL database: back it up with pg_dump, e.g. "
            f"`pg_dump --format=custom --file=qrels.dump {name}` (restore with pg_restore)"
        )
    if backend != "sqlite":
        raise BackupError(f"cannot back up a {backend} database; only SQLite files are backed up here")
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        raise BackupError(f"{url} is not a SQLite database file; there is nothing on disk to copy")
    path = Path(parsed.database)
    if not path.is_file():
        raise BackupError(f"no SQLite database at {path}; check QRELS_DB_URL")
    return path


def backup_sqlite(url: str, dest: Path | str) -> BackupReport:
    """Copy the SQLite database at ``url`` to ``dest``, consistently, while it is in use.

    Args:
        url: a ``sqlite:///`` URL of a database file.
        dest: the backup file to create; it must not exist (a backup never overwrites anything).
            Missing parent folders are created.

    Returns:
        Where the backup is, its size and how long it took.

    Raises:
        BackupError: ``url`` is not a SQLite file (for PostgreSQL the message says to use
            pg_dump), the database does not exist, ``dest`` exists already, or the copy failed
            its integrity check.
    """
    source_path = _sqlite_path(url)
    dest = Path(dest)
    if dest.exists():
        raise BackupError(f"{dest} exists already; choose a new file name (a backup never overwrites)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    started = time.perf_counter()
    # mode=rw: never create an empty database where the source should be.
    source = sqlite3.connect(f"{source_path.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        target = sqlite3.connect(temp)
        try:
            # pages=-1: the whole database in one step, i.e. one read snapshot. Copying in several
            # steps would restart whenever another connection commits, forever on a busy database.
            source.backup(target, pages=-1)
            # One self-contained file: no -wal/-shm next to the backup.
            target.execute("PRAGMA journal_mode=DELETE")
            check = target.execute("PRAGMA integrity_check").fetchall()
        finally:
            target.close()
        if check != [("ok",)]:
            raise BackupError(f"the copy of {source_path} failed its integrity check: {check[:5]}")
        with temp.open("rb") as fh:
            os.fsync(fh.fileno())
        if dest.exists():  # appeared meanwhile: still never overwrite
            raise BackupError(f"{dest} exists already; choose a new file name (a backup never overwrites)")
        os.replace(temp, dest)
    except sqlite3.Error as e:
        raise BackupError(f"backing up {source_path} failed: {e}") from e
    finally:
        source.close()
        temp.unlink(missing_ok=True)
    report = BackupReport(dest, dest.stat().st_size, time.perf_counter() - started)
    log.info("backed up %s to %s (%d bytes, %.2f s)", source_path, dest, report.bytes, report.seconds)
    return report


def pre_upgrade_backup_path(url: str, current_revision: str | None, now: datetime | None = None) -> Path:
    """Where :func:`backup_before_upgrade` puts its copy: ``backups/`` next to the database file,
    named after the database, the revision it was at and the time (UTC)."""
    source = _sqlite_path(url)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return (
        source.parent
        / BACKUP_DIR
        / f"{source.stem}-{stamp}-before-upgrade-from-{current_revision}{source.suffix}"
    )


def backup_before_upgrade(url: str, revision: str = "head") -> BackupReport | None:
    """Back up a SQLite database before its schema moves to ``revision``; None if nothing to keep.

    The copy goes to :func:`pre_upgrade_backup_path` (``backups/`` next to the database file).
    Nothing is copied for PostgreSQL (use pg_dump; a migration runs in one transaction there),
    for a database file that does not exist yet or was never migrated, or one already at
    ``revision``.
    """
    from db import migrate

    if make_url(url).get_backend_name() != "sqlite":
        return None
    try:
        _sqlite_path(url)
    except BackupError:
        return None  # in memory, or no file yet: nothing to lose
    current = migrate.current_revision(url)
    target = migrate.head_revision() if revision == "head" else revision
    if current is None or current == target:
        return None
    return backup_sqlite(url, pre_upgrade_backup_path(url, current))
