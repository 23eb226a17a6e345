"""Shared fixtures: a real database migrated with Alembic, an isolated data folder, users."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db import migrate
from db.session import Database, dispose_engine
from services.core import auth
from services.core.auth import Actor

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# A PostgreSQL server for the database tests, e.g. postgresql+psycopg://postgres@127.0.0.1:55432/postgres
# (.ci/run starts one); without it those tests run on SQLite only.
PG_ADMIN_URL = os.environ.get("QRELS_TEST_PG_URL")

BACKENDS = ["sqlite"] + (["postgresql"] if PG_ADMIN_URL else [])


def _fresh_postgres_url() -> str:
    name = f"qrels_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return str(make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False))


def _drop_postgres(url: str) -> None:
    name = make_url(url).database
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("QRELS_DATA_DIR", str(path))
    return path


@pytest.fixture(params=BACKENDS)
def empty_db_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A URL of an empty database (not migrated), on each backend under test."""
    url = f"sqlite:///{tmp_path / 'qrels.db'}" if request.param == "sqlite" else _fresh_postgres_url()
    monkeypatch.setenv("QRELS_DB_URL", url)
    yield url
    dispose_engine(url)
    if request.param == "postgresql":
        _drop_postgres(url)


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A database migrated to head with Alembic."""
    migrate.upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def db(db_url: str, data_dir: Path) -> Database:
    return Database(db_url)


@pytest.fixture
def sqlite_db(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A migrated SQLite database only (page and browser tests, which need no second backend)."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("QRELS_DB_URL", url)
    migrate.upgrade(url)
    yield Database(url)
    dispose_engine(url)


PASSWORD = "correct horse battery"


def make_users(db: Database) -> dict[str, Actor]:
    """admin, reviewer, ann1, ann2 with PASSWORD; returns their actors."""
    actors = {}
    for name, role in (
        ("admin", "admin"),
        ("reviewer", "reviewer"),
        ("ann1", "annotator"),
        ("ann2", "annotator"),
    ):
        info = auth.add_user(db, name, role, PASSWORD)
        actors[name] = Actor(info.id, info.name, info.role)
    return actors


@pytest.fixture
def users(db: Database) -> dict[str, Actor]:
    return make_users(db)
