"""Settings read from the environment: every ``QRELS_*`` variable is read here and nowhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///data/qrels.db"


def _str_env(name: str) -> str | None:
    raw = os.environ.get(name, "").strip()
    return raw or None


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from e


def _float_env(name: str, default: float, *, low: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be a number, got {raw!r}") from e
    if value < low:
        raise ValueError(f"{name} must be at least {low:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Process settings.

    Attributes:
        db_url: ``QRELS_DB_URL``; SQLite file by default, ``postgresql+psycopg://...`` for teams.
        data_dir: ``QRELS_DATA_DIR``: media store, thumbnails, embeddings, demo bundle.
        allowed_roots: ``QRELS_ALLOWED_ROOTS`` (os.pathsep-separated): folders outside a bundle
            that its absolute image paths may point into. Empty: only inside the bundle.
        session_timeout_minutes: ``QRELS_SESSION_TIMEOUT_MIN``: log out after this much inactivity.
        session_max_hours: ``QRELS_SESSION_MAX_HOURS``: a browser session ends this long after
            the login however active it is (the cookie that survives reloads lives no longer).
        max_failed_logins / lockout_minutes: ``QRELS_MAX_FAILED_LOGINS`` failures in a row lock the
            account for ``QRELS_LOCKOUT_MIN`` minutes.
        clip_model / clip_pretrained: ``QRELS_CLIP_MODEL`` (used when a dataset names no model) and
            ``QRELS_CLIP_PRETRAINED`` (overrides every dataset's weights: an open_clip tag or a
            local checkpoint).
        job_heartbeat_s: ``QRELS_JOB_HEARTBEAT_S``: how often a running job (ranking, dataset
            delete) says it is alive.
        job_stale_s: ``QRELS_JOB_STALE_S``: a job silent for longer died with its process; it is
            shown and marked failed, and a new one may start. Keep it well above the heartbeat.
        write_batch_ms: ``QRELS_WRITE_BATCH_MS``: how long one transaction of a bulk write
            (re-rank, dataset delete) should hold the write lock; others wait at most about this.
        search_cache_datasets: ``QRELS_SEARCH_CACHE_DATASETS``: how many datasets' pool search
            indexes a process keeps open (least recently used closed first; each is memory-mapped
            from the data folder, so reopening one costs milliseconds).
    """

    db_url: str
    data_dir: Path
    allowed_roots: tuple[Path, ...] = field(default_factory=tuple)
    session_timeout_minutes: int = 60
    session_max_hours: int = 12
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    clip_model: str | None = None
    clip_pretrained: str | None = None
    job_heartbeat_s: float = 5.0
    job_stale_s: float = 60.0
    write_batch_ms: float = 50.0
    search_cache_datasets: int = 4


def load_settings() -> Settings:
    """Read settings from the environment (cheap; call it where needed)."""
    roots = tuple(
        Path(p).resolve() for p in os.environ.get("QRELS_ALLOWED_ROOTS", "").split(os.pathsep) if p.strip()
    )
    return Settings(
        db_url=os.environ.get("QRELS_DB_URL") or DEFAULT_DB_URL,
        data_dir=Path(os.environ.get("QRELS_DATA_DIR", "data")),
        allowed_roots=roots,
        session_timeout_minutes=_int_env("QRELS_SESSION_TIMEOUT_MIN", 60),
        session_max_hours=_int_env("QRELS_SESSION_MAX_HOURS", 12),
        max_failed_logins=_int_env("QRELS_MAX_FAILED_LOGINS", 5),
        lockout_minutes=_int_env("QRELS_LOCKOUT_MIN", 15),
        clip_model=_str_env("QRELS_CLIP_MODEL"),
        clip_pretrained=_str_env("QRELS_CLIP_PRETRAINED"),
        job_heartbeat_s=_float_env("QRELS_JOB_HEARTBEAT_S", 5.0, low=0.01),
        job_stale_s=_float_env("QRELS_JOB_STALE_S", 60.0, low=0.05),
        write_batch_ms=_float_env("QRELS_WRITE_BATCH_MS", 50.0, low=1.0),
        search_cache_datasets=_int_env("QRELS_SEARCH_CACHE_DATASETS", 4),
    )
