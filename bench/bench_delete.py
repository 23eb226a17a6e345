"""Deleting a dataset at MCMR's size: one cascading statement (before 0002's foreign-key indexes
and after them) against the batched delete of migration 0007.

Builds, at a given schema revision, a dataset of ``--items`` items, ``--queries`` queries with
their qrels, five runs of candidates (``--per-query`` rows per query in all: 750 gives the ~7.5
million rows a real 100,000-item ranking writes), assignments and judgments, by bulk inserts (the
rows' shape is what a delete walks; how they were made does not matter). Then times
``DELETE FROM datasets`` (what ``services.datasets.catalog.delete_dataset`` runs; every child row
goes by ON DELETE CASCADE) at revision 0001 (no index on ``candidates.item_id``,
``judgments.item_id``, ...) and at head; one statement is one transaction, so it holds the write
lock from start to end. ``batched`` times what the app does since 0007
(``services.datasets.deletion``): the dataset marked in one short transaction, then its rows in
short ones; its figure is the total time and the longest transaction. A run that outlasts
``--limit-s`` is stopped and reported as such. SQLite by default; ``--pg URL`` (an admin URL)
runs the same on PostgreSQL too.

    python bench/bench_delete.py                                    # 100,000 items, 7.5 M candidates
    python bench/bench_delete.py --items 2000 --queries 200 --limit-s 60
    python bench/bench_delete.py --items 20000 --queries 2000 --variants head,batched
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.results_md import append_row  # noqa: E402
from db import migrate  # noqa: E402
from db.session import Database, dispose_engine, get_engine  # noqa: E402

RUNS = ("clip_image", "clip_text", "bm25", "hybrid", "pooled")
BATCH = 50_000


def build(url: str, items: int, queries: int, per_query: int, seed: int) -> int:
    """Fill the database at ``url`` (already migrated) with one dataset; return candidate rows."""
    rng = random.Random(seed)
    engine = get_engine(url)
    sources = "sources" if migrate.current_revision(url) == "0001" else "rankers"
    now = "2026-12-01 00:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, name, role, password_hash, is_active, failed_logins, created_at) "
                "VALUES (1, 'ann', 'annotator', 'x', true, 0, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, source_format, guidelines, settings, is_demo, created_at) "
                "VALUES (1, 'big', 'native', '', '{}', false, :now)"
            ),
            {"now": now},
        )
        insert_many(
            conn,
            "INSERT INTO items (id, dataset_id, ext_id, title, text, attributes, image_status) "
            "VALUES (:id, 1, :ext, :t, :t, '{}', 'missing')",
            ({"id": i, "ext": f"it{i}", "t": f"item {i}"} for i in range(1, items + 1)),
        )
        insert_many(
            conn,
            "INSERT INTO queries (id, dataset_id, ext_id, text, extra, position) "
            "VALUES (:id, 1, :ext, :t, '{}', :id)",
            ({"id": q, "ext": f"q{q}", "t": f"query {q}"} for q in range(1, queries + 1)),
        )
        insert_many(
            conn,
            "INSERT INTO qrels (query_id, item_id, score) VALUES (:q, :i, 1)",
            ({"q": q, "i": rng.randint(1, items)} for q in range(1, queries + 1)),
        )
        for run_id, name in enumerate(RUNS, start=1):
            conn.execute(
                text(
                    "INSERT INTO ranker_runs (id, dataset_id, name, kind, params, created_at) "
                    "VALUES (:id, 1, :name, :kind, '{}', :now)"
                ),
                {"id": run_id, "name": name, "kind": "pooled" if name == "pooled" else "ranker", "now": now},
            )
        depth = per_query // len(RUNS)

        def candidates():
            for q in range(1, queries + 1):
                for run_id in range(1, len(RUNS) + 1):
                    for rank, item in enumerate(rng.sample(range(1, items + 1), depth), start=1):
                        yield {"r": run_id, "q": q, "i": item, "k": rank, "s": 1.0 / rank}

        if conn.dialect.name == "postgresql":  # COPY: executemany of 7.5 M rows takes many minutes
            n = 0
            raw = conn.connection.driver_connection
            with raw.cursor().copy(
                f"COPY candidates (run_id, query_id, item_id, rank, score, {sources}) FROM STDIN"
            ) as copy:
                for row in candidates():
                    copy.write_row((row["r"], row["q"], row["i"], row["k"], row["s"], "{}"))
                    n += 1
        else:
            n = insert_many(
                conn,
                f"INSERT INTO candidates (run_id, query_id, item_id, rank, score, {sources}) "
                "VALUES (:r, :q, :i, :k, :s, '{}')",
                candidates(),
            )
        insert_many(
            conn,
            "INSERT INTO assignments (query_id, user_id, status, position, skips, assigned_at) "
            "VALUES (:q, 1, 'done', :q, 0, :now)",
            ({"q": q, "now": now} for q in range(1, queries + 1)),
        )
        insert_many(
            conn,
            "INSERT INTO judgments (user_id, query_id, item_id, label, provenance, provenance_detail, "
            "created_at, updated_at) VALUES (1, :q, :i, 'relevant', 'candidate', '{}', :now, :now)",
            ({"q": q, "i": rng.randint(1, items), "now": now} for q in range(1, queries + 1)),
        )
    return n


def insert_many(conn, sql: str, rows) -> int:
    statement, batch, n = text(sql), [], 0
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            conn.execute(statement, batch)
            n += len(batch)
            batch = []
    if batch:
        conn.execute(statement, batch)
        n += len(batch)
    return n


def time_delete(url: str, limit_s: float) -> float | None:
    """Seconds ``DELETE FROM datasets`` took, or None when it was stopped at ``limit_s``."""
    engine = get_engine(url)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        timer = threading.Timer(limit_s, _interrupt, args=(raw,))
        started = time.perf_counter()
        timer.start()
        try:
            conn.execute(text("DELETE FROM datasets WHERE id = 1"))
            conn.commit()
        except Exception:  # interrupted (SQLite) or cancelled (PostgreSQL)
            conn.rollback()
            return None
        finally:
            timer.cancel()
        return time.perf_counter() - started


def time_batched(url: str) -> tuple[float, float, int]:
    """Seconds of the batched delete, its longest transaction and its number of transactions."""
    from services.datasets.deletion import mark_deleted, purge_dataset

    db = Database(url)
    started = time.perf_counter()
    mark_started = time.perf_counter()
    dataset_id = mark_deleted(db, "big")
    mark_s = time.perf_counter() - mark_started
    report = purge_dataset(db, dataset_id)
    return time.perf_counter() - started, max(mark_s, report.longest_write_s), report.batches + 1


def _interrupt(raw) -> None:
    if isinstance(raw, sqlite3.Connection):
        raw.interrupt()
    else:
        raw.cancel()


def databases(pg_admin: str | None, work: Path):
    """(label, url factory) per backend."""
    yield "SQLite", lambda tag: f"sqlite:///{work / f'{tag}.db'}"
    if pg_admin:

        def pg(tag: str) -> str:
            name = f"qrels_bench_{tag}_{uuid.uuid4().hex[:8]}"
            admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            return make_url(pg_admin).set(database=name).render_as_string(hide_password=False)

        yield "PostgreSQL", pg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--per-query", type=int, default=750, help="candidate rows per query, all runs")
    parser.add_argument("--limit-s", type=float, default=600.0)
    parser.add_argument("--pg", default=None, help="PostgreSQL admin URL to run there too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants", default="0001,head,batched", help="comma-separated: 0001, head (one statement), batched"
    )
    args = parser.parse_args()
    variants = args.variants.split(",")
    work = Path(tempfile.mkdtemp(prefix="qrels-bench-delete-"))
    command = "python bench/bench_delete.py" + "".join(
        f" --{k.replace('_', '-')} {v}"
        for k, v in (
            ("items", args.items),
            ("queries", args.queries),
            ("per_query", args.per_query),
            ("variants", args.variants),
        )
        if v != parser.get_default(k)
    )
    for backend, make in databases(args.pg, work):
        for variant, revision, label in (
            ("0001", "0001", "before (0001: no index on candidates.item_id, ...)"),
            ("head", "head", "one statement at head (one transaction: the write lock held throughout)"),
            ("batched", "head", "batched (0007: marked, then short transactions)"),
        ):
            if variant not in variants:
                continue
            url = make(variant)
            migrate.upgrade(url, revision)
            started = time.perf_counter()
            n = build(url, args.items, args.queries, args.per_query, args.seed)
            built = time.perf_counter() - started
            if variant == "batched":
                seconds, longest, transactions = time_batched(url)
                value = f"{seconds:.1f} s in {transactions} transactions, longest {longest * 1000:.0f} ms"
            else:
                seconds = time_delete(url, args.limit_s)
                value = f"stopped after {args.limit_s:.0f} s" if seconds is None else f"{seconds:.1f} s"
                value += "" if seconds is None else f" (one transaction: longest {seconds:.1f} s)"
            dispose_engine(url)
            print(
                f"{backend} {label}: delete {value} ({n:,} candidate rows, built in {built:.0f} s)",
                flush=True,
            )
            append_row(
                f"delete a dataset, {backend}, {label}: {args.items:,} items, {args.queries:,} queries, {n:,} candidate rows",
                value,
                command + (" --pg URL" if backend == "PostgreSQL" else ""),
                "cpu",
            )


if __name__ == "__main__":
    main()
