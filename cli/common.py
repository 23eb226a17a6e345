"""What every command group shares: the database handle, error printing, progress bars."""

from __future__ import annotations

import logging
import sys
import time
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


class _TqdmHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A console handler that prints through ``tqdm.write``, above the bar being drawn."""

    @classmethod
    def replacing(cls, handler: logging.Handler) -> logging.Handler:
        if type(handler) is not logging.StreamHandler:
            return handler
        new = cls(handler.stream)
        new.setFormatter(handler.formatter)
        new.setLevel(handler.level)
        for f in handler.filters:
            new.addFilter(f)
        return new

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


QUIET_HELP = "No progress bars or per-stage lines: only the result, warnings and errors (for scripts)."


class Bars:
    """Progress of a job's stages, fed by a services progress callback; use it as a context manager.

    Stages run one after another, so one bar is drawn at a time: when a new stage starts, the bar
    of the one before is cleared and replaced by a one-line summary (``embedding images: 1,200 in
    4.1 s``). Bars are drawn only on a terminal (stderr); summaries go to stderr too, so stdout
    holds the command's result alone. Log records print above the bar instead of through it.
    ``quiet`` draws nothing and prints no summaries.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.stage: str | None = None
        self.bar: tqdm | None = None
        self.done = self.total = 0
        self.started = 0.0
        self._handlers: list[logging.Handler] | None = None

    def __enter__(self) -> Bars:
        root = logging.getLogger()
        self._handlers = root.handlers
        root.handlers = [_TqdmHandler.replacing(h) for h in root.handlers]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(summarise=exc[0] is None)
        if self._handlers is not None:
            logging.getLogger().handlers = self._handlers
            self._handlers = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self._finish()
            self.stage, self.started = stage, time.perf_counter()
            if not self.quiet:
                # disable=None: no bar when stderr is not a terminal (a log file, a pipe, a test).
                self.bar = tqdm(
                    total=total, desc=stage, unit="it", leave=False, disable=None, file=sys.stderr
                )
        self.done, self.total = done, total
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)

    def _finish(self, summarise: bool = True) -> None:
        if self.stage is None:
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if summarise and not self.quiet:
            seconds = time.perf_counter() - self.started
            typer.echo(f"{self.stage}: {self.done:,} of {self.total:,} in {seconds:.1f} s", err=True)
        self.stage = None

    def close(self, summarise: bool = True) -> None:
        """Clear the last bar (and print its summary unless the job failed)."""
        self._finish(summarise)
