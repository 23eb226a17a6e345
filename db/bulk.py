"""Millions of rows in short transactions: batched inserts and key-sliced deletes.

One transaction that writes millions of rows holds SQLite's database-wide write lock (and on
PostgreSQL its row locks and a long-lived snapshot) for minutes; every submit behind it stalls or
fails. These helpers cut such work into transactions of their own, each sized by how long the
previous one held the lock (:class:`BatchSizer`), so a writer waiting behind one never waits more
than about ``target_s``. Work done this way is not atomic as a whole: callers make it safe to stop
half-way (write beside what readers see and switch in one short transaction; mark what to delete
first and resume from the mark).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import ColumnElement, Table, delete

from db.session import Database

#: Called after each committed batch with the rows it wrote or deleted (progress, tests' pauses).
AfterBatch = Callable[[int], None]

DEFAULT_TARGET_S = 0.05
# Bound parameters in one statement: SQLite allows 32,766 (since 3.32), PostgreSQL 65,535.
MAX_PARAMETERS = 30_000


@dataclass
class BatchSizer:
    """The next batch's size, steered so each transaction takes about ``target_s``.

    Starts at ``first`` rows and scales by the ratio of target to measured seconds, at most
    doubling or halving at once; a batch slowed by a busy machine shrinks the next one.
    """

    target_s: float = DEFAULT_TARGET_S
    first: int = 100
    low: int = 50
    high: int = 50_000
    size: int = field(init=False)
    held_s: list[float] = field(default_factory=list)  # every batch's transaction, for reports

    def __post_init__(self) -> None:
        self.size = max(self.low, min(self.high, self.first))

    @classmethod
    def for_keys(cls, target_s: float = DEFAULT_TARGET_S) -> BatchSizer:
        """A sizer of key slices for :func:`delete_by_keys`: starts at two keys, grows by doubling."""
        return cls(target_s=target_s, first=2, low=1, high=20_000)

    def record(self, rows: int, seconds: float) -> None:
        """Note that ``rows`` took ``seconds``; sets the next :attr:`size`."""
        self.held_s.append(seconds)
        if rows <= 0:
            return
        ratio = self.target_s / max(seconds, 1e-4)
        wanted = rows * min(2.0, max(0.5, ratio))
        self.size = int(max(self.low, min(self.high, wanted)))

    @property
    def longest_s(self) -> float:
        return max(self.held_s, default=0.0)


def _chunks(rows: Iterator[dict[str, Any]], sizer: BatchSizer) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(rows, sizer.size)):
        yield chunk


class _MultiRowInsert:
    """``INSERT ... VALUES (...), (...), ...`` of a batch, its SQL and parameters made up front.

    One statement per batch, executed as prepared: Python's sqlite3 releases the GIL around every
    step, and an ``executemany`` of 500 rows beside three busy threads waited for the GIL 500
    times (200 ms instead of 2 ms, all of it holding the write lock). Values go through each
    column's own bind processing (JSON, UTC times) before the transaction starts.
    """

    def __init__(self, table: Table, keys: Sequence[str], dialect: Any) -> None:
        self.keys = list(keys)
        quote = dialect.identifier_preparer.quote
        self.head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(k) for k in self.keys)}) VALUES "
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.row = "(" + ", ".join([mark] * len(self.keys)) + ")"
        self.processors = [table.c[k].type.bind_processor(dialect) for k in self.keys]
        self.max_rows = max(1, MAX_PARAMETERS // len(self.keys))

    def statements(self, chunk: list[dict[str, Any]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        for start in range(0, len(chunk), self.max_rows):
            part = chunk[start : start + self.max_rows]
            values = []
            for row in part:
                for key, process in zip(self.keys, self.processors, strict=True):
                    value = row[key]
                    values.append(process(value) if process is not None and value is not None else value)
            yield self.head + ", ".join([self.row] * len(part)), tuple(values)


def insert_rows(
    db: Database,
    table: Table,
    rows: Iterable[dict[str, Any]],
    *,
    sizer: BatchSizer | None = None,
    after_batch: AfterBatch | None = None,
) -> int:
    """Insert ``rows`` into ``table`` in short transactions; returns the count.

    Every row must have the same keys, and give every column without a server default. A failure
    leaves the batches before it committed.
    """
    sizer = sizer or BatchSizer()
    maker: _MultiRowInsert | None = None
    written = 0
    for chunk in _chunks(iter(rows), sizer):
        maker = maker or _MultiRowInsert(table, list(chunk[0]), db.engine.dialect)
        statements = list(maker.statements(chunk))  # made before the lock is taken
        with db.write() as s:
            started = time.perf_counter()
            conn = s.connection()
            for sql, params in statements:
                conn.exec_driver_sql(sql, params)
        sizer.record(len(chunk), time.perf_counter() - started)
        written += len(chunk)
        if after_batch is not None:
            after_batch(len(chunk))
    return written


def delete_by_keys(
    db: Database,
    table: Table,
    column: ColumnElement[Any],
    keys: Sequence[Any],
    *,
    where: Sequence[ColumnElement[bool]] = (),
    sizer: BatchSizer | None = None,
    after_batch: AfterBatch | None = None,
) -> int:
    """Delete the rows of ``table`` whose ``column`` is in ``keys`` (and ``where``), a slice of
    keys per short transaction; returns the rows deleted.

    ``column`` should lead an index together with ``where``'s columns, e.g. candidates by
    ``(run_id, query_id)`` or items by their id, so each slice finds its rows directly, on SQLite
    and PostgreSQL alike. The sizer counts keys here, steered by the time each slice takes (a key
    with many rows, or rows that cascade far, makes the next slice smaller). Rows inserted for
    those keys after their slice went are not deleted; a rerun finds them.
    """
    sizer = sizer or BatchSizer.for_keys()
    deleted, start = 0, 0
    while start < len(keys):
        part = list(keys[start : start + sizer.size])
        with db.write() as s:
            began = time.perf_counter()
            n = s.execute(delete(table).where(column.in_(part), *where)).rowcount or 0
        sizer.record(len(part), time.perf_counter() - began)
        deleted += n
        start += len(part)
        if after_batch is not None:
            after_batch(n)
    return deleted
