"""The schema comes only from Alembic, and the models never drift from it."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Enum, UniqueConstraint, inspect, text
from sqlalchemy.exc import IntegrityError

from db import migrate
from db.schema import metadata
from db.session import get_engine


def test_upgrade_to_head_and_back_down(empty_db_url: str) -> None:
    assert migrate.current_revision(empty_db_url) is None
    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(empty_db_url) == migrate.head_revision()
    tables = set(inspect(get_engine(empty_db_url)).get_table_names())
    assert set(metadata.tables) <= tables
    migrate.downgrade(empty_db_url, "base")
    assert migrate.current_revision(empty_db_url) is None
    assert set(inspect(get_engine(empty_db_url)).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(empty_db_url)  # and up again: downgrade left nothing behind
    assert migrate.is_up_to_date(empty_db_url)


def test_models_match_migrations(db_url: str) -> None:
    """Fails when a model changes without a migration (run `alembic revision --autogenerate`)."""
    with get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate.upgrade(url)
    with get_engine(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_every_foreign_key_leads_an_index() -> None:
    """A delete that cascades (or sets null) through a foreign key finds the rows by an index."""
    unindexed = []
    for table in metadata.sorted_tables:
        leading = {index.columns[0].name for index in table.indexes}
        leading |= {c.columns[0].name for c in table.constraints if isinstance(c, UniqueConstraint)}
        leading |= {c.name for c in table.primary_key.columns[:1]}
        unindexed += [
            f"{table.name}.{fk.parent.name}" for fk in table.foreign_keys if fk.parent.name not in leading
        ]
    assert not unindexed


def test_the_database_refuses_values_the_code_would_not_write(db_url: str) -> None:
    engine = get_engine(db_url)
    enum_columns = [
        (table.name, column.name)
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Enum)
    ]
    assert len(enum_columns) >= 17
    checks = {table: inspect(engine).get_check_constraints(table) for table, _ in enum_columns}
    for table, column in enum_columns:
        assert any(column in (c.get("sqltext") or "") for c in checks[table]), (
            f"{table}.{column} has no CHECK"
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (name, role, password_hash, is_active, failed_logins, created_at) "
                "VALUES ('mallory', 'superuser', 'x', true, 0, CURRENT_TIMESTAMP)"
            )
        )
