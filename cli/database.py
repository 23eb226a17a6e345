"""The database schema and its backups."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import user_errors
from db import migrate
from services.core.config import load_settings


@user_errors
def db_upgrade(
    revision: str = typer.Argument("head"),
    no_backup: bool = typer.Option(False, "--no-backup", help="Skip the backup of a SQLite database."),
) -> None:
    """Upgrade the schema (default: to the latest revision); a SQLite database is backed up first."""
    from db.backup import backup_before_upgrade

    url = load_settings().db_url
    if not no_backup:
        backup = backup_before_upgrade(url, revision)
        if backup is not None:
            typer.echo(f"backed up to {backup.path} before upgrading ({backup.bytes / 1e6:.1f} MB)")
    migrate.upgrade(url, revision)
    typer.echo(f"database at revision {migrate.current_revision(url)}")


@user_errors
def db_backup(path: Path = typer.Argument(..., help="The backup file to create; it must not exist.")) -> None:
    """Copy the live SQLite database to PATH, consistently, while the app runs (PostgreSQL: pg_dump)."""
    from db.backup import backup_sqlite

    report = backup_sqlite(load_settings().db_url, path)
    typer.echo(f"backed up to {report.path} ({report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s)")


@user_errors
def db_downgrade(revision: str = typer.Argument(...)) -> None:
    """Downgrade the schema to REVISION (``base`` drops everything)."""
    url = load_settings().db_url
    migrate.downgrade(url, revision)
    typer.echo(f"database at revision {migrate.current_revision(url)}")


def db_current() -> None:
    """Print the schema revision of the database."""
    url = load_settings().db_url
    typer.echo(f"{migrate.current_revision(url)} (head is {migrate.head_revision()})")
