"""Engine and session factory: one per database URL.

SQLite gets WAL, foreign keys and a busy timeout on every connection so concurrent annotators
wait for the write lock instead of failing; PostgreSQL needs none of that. Writers of one process
on one SQLite file also queue in order (:class:`FairLock`) in front of ``BEGIN IMMEDIATE``:
SQLite's busy handler polls with growing sleeps, so under a crowd a writer that arrived early can
lose the lock again and again to later ones (submit p99 of seconds at p50 of tens of ms).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "qrels_write"
# Python's sqlite3 lets go of the GIL around every statement; taking it back waits for the busy
# thread to reach the switch interval (5 ms by default). A writer does a dozen statements while
# every other writer queues behind it: 1 ms cut its turn by a sixth under 50 annotators.
GIL_SWITCH_INTERVAL_S = 0.001

_engines: dict[str, Engine] = {}
_write_locks: dict[str, FairLock] = {}
_lock = threading.Lock()


class FairLock:
    """A reentrant first-come first-served lock: the releaser hands it to the oldest waiter.

    ``threading.Lock`` promises no order, and SQLite's busy handler none either; this one keeps
    the writers of a process in arrival order, so no one waits longer than the writers before it.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def acquire(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lock (at once if this thread holds it already)."""
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._waiters:
                self._owner, self._depth = me, 1
                return True
            gate = threading.Lock()
            gate.acquire()
            entry = (me, gate)
            self._waiters.append(entry)
        if gate.acquire(timeout=timeout):
            return True  # handed over: release() made this thread the owner
        with self._mutex:
            if entry in self._waiters:
                self._waiters.remove(entry)
                return False
        return True  # handed over just as the wait timed out

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("FairLock released by a thread that does not hold it")
            self._depth -= 1
            if self._depth:
                return
            if self._waiters:
                owner, gate = self._waiters.popleft()
                self._owner, self._depth = owner, 1
                gate.release()
            else:
                self._owner = None

    @property
    def waiting(self) -> int:
        """How many threads wait for the lock now (for benchmarks and tests)."""
        with self._mutex:
            return len(self._waiters)


def write_lock(url: str) -> FairLock | None:
    """The process-wide queue of writers for ``url`` (SQLite only; None for PostgreSQL)."""
    if not is_sqlite(url):
        return None
    with _lock:
        lock = _write_locks.get(url)
        if lock is None:
            lock = _write_locks[url] = FairLock()
        return lock


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin(conn) -> None:
    # A deferred BEGIN that reads and then writes fails at once with "database is locked" when
    # another writer committed in between (busy_timeout cannot help); write transactions take
    # the write lock up front instead, reads stay deferred so they never wait on writers (WAL).
    if conn.get_execution_options().get(WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the settings this app relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=20,
            max_overflow=40,
        )
        event.listen(engine, "connect", _set_sqlite_pragmas)

        # Let SQLAlchemy, not pysqlite, emit BEGIN, so BEGIN IMMEDIATE can be used.
        @event.listens_for(engine, "connect")
        def _disable_pysqlite_begin(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None

        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=40)


def get_engine(url: str) -> Engine:
    """The process-wide engine for ``url``."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


class Database:
    """The one handle services take: read sessions and write transactions on one engine.

    Example:
        >>> db = Database("sqlite:///data/qrels.db")
        >>> with db.write() as s:   # commits on exit, rolls back on error
        ...     s.add(obj)
        >>> with db.read() as s:
        ...     s.scalars(select(User)).all()
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = get_engine(self.url)
        self._queue = write_lock(self.url)
        if self._queue is not None and sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            bind=self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; it is closed (its transaction ended, nothing committed) on exit."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error.

        On SQLite the writers of this process take turns in arrival order (:class:`FairLock`) for
        as long as the transaction lasts, so keep write transactions short: hash passwords, read
        files and compute before entering.

        Raises:
            sqlalchemy.exc.OperationalError: SQLite only: the turn did not come within the busy
                timeout (what SQLite itself says when its lock stays taken that long).
        """
        if self._queue is None:
            with self._write.begin() as session:
                yield session
            return
        if not self._queue.acquire(SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise OperationalError(
                "BEGIN IMMEDIATE",
                None,
                sqlite3.OperationalError(
                    f"database is locked (no turn to write within {SQLITE_BUSY_TIMEOUT_MS / 1000:.0f} s)"
                ),
            )
        try:
            with self._write.begin() as session:
                yield session
        finally:
            self._queue.release()


def dispose_engine(url: str) -> None:
    """Close and forget the engine for ``url`` (tests, backups)."""
    with _lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()
