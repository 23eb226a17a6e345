"""Domain errors: each message says what is wrong and what to fix.

Pages show them with ``st.error``; the CLI prints them and exits non-zero.
"""

from __future__ import annotations


class QrelsError(Exception):
    """Base class of every error a user can cause."""


class BundleError(QrelsError):
    """A bundle (or benchmark file) to import is malformed.

    Attributes:
        file: the file that is wrong, relative to the bundle where possible.
        line: 1-based line number within ``file``, when it applies.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(f"{where}{message}")
        self.detail = message


class DatasetExistsError(QrelsError):
    """A dataset with that name exists and ``replace`` was not asked for."""


class NotFoundError(QrelsError):
    """A named thing (dataset, user, query) does not exist."""


class AuthError(QrelsError):
    """Login failed (wrong name or password, locked account)."""


class PermissionDenied(QrelsError):
    """The acting user's role does not allow this operation."""


class ValidationError(QrelsError):
    """An argument given by a user is out of range or malformed."""


class DemoError(QrelsError):
    """The demo generator was asked for something it cannot make."""


class ModelUnavailable(QrelsError):
    """A dataset's CLIP model or weights cannot be loaded here (wrong tag, missing checkpoint, offline)."""


class SaveFailed(QrelsError):
    """The database could not store a submission (busy, restarting); it is safe to retry."""
