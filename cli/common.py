"""What every command group shares: the database handle, error printing, progress bars."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import typer
from tqdm import tqdm

from db import migrate
from db.backup import BackupError
from db.session import Database
from models.weights import ModelLoadError
from services.core.config import load_settings
from services.core.errors import QrelsError

# Errors a user can fix: one line on stderr and exit status 1, never a traceback.
USER_ERRORS = (QrelsError, BackupError, ModelLoadError)


def database() -> Database:
    """The database of ``QRELS_DB_URL``, refusing one that is not at the latest schema."""
    settings = load_settings()
    if not migrate.is_up_to_date(settings.db_url):
        typer.echo(
            "error: the database is not at the latest schema; run `python cli.py db upgrade`", err=True
        )
        raise typer.Exit(1)
    return Database(settings.db_url)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print domain errors as one line and exit 1 (a traceback is for bugs, not bad input)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None

    return wrapper


class Bars:
    """One tqdm bar per stage of a job, fed by a services progress callback."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="it", leave=True)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
