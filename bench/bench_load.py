"""Load: many annotators at once through the services the workbench page calls.

Each simulated annotator is a thread with its own account: it logs in (``auth.authenticate``),
opens its queue (``my_datasets``, ``next_assignment``), loads each query (``load_task``) and
submits a decision (``submit``), as pages/workbench.py does. A submit the database could not take
(``SaveFailed``) is retried with the same client token, as the page's "Retry saving" button does;
some submits are sent twice on purpose (a reload) and some twice at the same moment (a double
click), so exactly-once storage is exercised, not assumed. Afterwards :func:`verify` checks the
database against what every annotator was told: each acknowledged submission is stored exactly
once with its judgments and verdict, and nothing else is.

tests/test_load.py runs a small configuration on SQLite and PostgreSQL; this script measures it:

    python bench/bench_load.py                    # SQLite (WAL); PostgreSQL too when
    QRELS_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:55432/postgres python bench/bench_load.py
    python bench/bench_load.py --annotators 50 --queries 600 --overlap 2 --no-append

By default logins use the app's real argon2 parameters, so a team logging in at once is part of
the figures; ``--cheap-hashing`` uses a fast argon2 setting to measure the submit path alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from argon2 import PasswordHasher  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from db.models import (  # noqa: E402
    Assignment,
    Dataset,
    Judgment,
    JudgmentHistory,
    Query,
    QueryRevision,
    QueryVerdict,
    Submission,
    User,
)
from db.session import Database  # noqa: E402
from services.annotation.queue import my_datasets, next_assignment  # noqa: E402
from services.annotation.submit import LabelInput, QueryWork, SubmitResult, submit  # noqa: E402
from services.annotation.task import Task, load_task  # noqa: E402
from services.core import auth  # noqa: E402
from services.core.errors import SaveFailed  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
HEADER = "| figure | value | machine | command | date |\n|---|---|---|---|---|\n"
PASSWORD = "load-test-password"
# A fast argon2 setting for tests: the load test checks concurrency, not the cost of a hash.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
SAVE_ATTEMPTS = 6  # the page's "Retry saving", pressed up to this many times
MAX_LOGINS_AT_ONCE = 8  # argon2 takes 64 MiB per verification: bound the memory of a login burst


# --------------------------------------------------------------------------- setup


def add_annotators(
    db: Database, n: int, *, prefix: str = "load", hasher: PasswordHasher | None = None
) -> list[str]:
    """Create ``n`` annotator accounts with :data:`PASSWORD`, hashed once and inserted directly."""
    password_hash = (hasher or auth._hasher).hash(PASSWORD)
    names = [f"{prefix}{i:03d}" for i in range(n)]
    with db.write() as s:
        s.execute(
            insert(User),
            [
                {
                    "name": name,
                    "role": "annotator",
                    "password_hash": password_hash,
                    "is_active": True,
                    "failed_logins": 0,
                }
                for name in names
            ],
        )
    return names


@contextmanager
def cheap_hashing() -> Iterator[None]:
    """Swap the app's argon2 hasher for :data:`CHEAP_HASHER` (accounts must be hashed with it too)."""
    saved = auth._hasher
    auth._hasher = CHEAP_HASHER
    try:
        yield
    finally:
        auth._hasher = saved


def build_dataset(db: Database, folder: Path, name: str, *, n_queries: int, n_items: int = 12) -> None:
    """Import a bundle of ``n_queries`` queries with a pooled candidate run over its items."""
    from services.ingest.importer import import_bundle
    from tests.bundles import add_pooled_candidates, make_bundle

    import_bundle(db, make_bundle(folder, n_items=n_items, n_queries=n_queries), name)
    add_pooled_candidates(db, name)


# --------------------------------------------------------------------------- one annotator


def decision_for(task: Task, user_id: int, token: str) -> QueryWork:
    """What this annotator decides on this query: the same every run (seeded by user and query)."""
    rng = random.Random(f"{user_id}:{task.query_id}")
    labels = {
        p.item_id: LabelInput(rng.choice(("relevant", "relevant", "unsure")), "original")
        for p in task.positives
    }
    for c in rng.sample(task.candidates, min(2, len(task.candidates))):
        labels[c.card.item_id] = LabelInput(
            rng.choice(("relevant", "not_relevant")), "candidate", position=c.position
        )
    roll = rng.random()
    if roll < 0.1:
        return QueryWork(labels, "reject", reason="ambiguous", client_token=token, time_on_task_ms=1000)
    if roll < 0.2:
        rewrite = f"{task.original_text} (rewritten by {user_id})"
        return QueryWork(labels, "rewrite", rewrite=rewrite, client_token=token, time_on_task_ms=1000)
    return QueryWork(labels, "accept", note="load test", client_token=token, time_on_task_ms=1000)


@dataclass(frozen=True)
class Ack:
    """A submission an annotator was told is saved."""

    token: str
    user_id: int
    assignment_id: int
    query_id: int
    submission_id: int
    decision: QueryWork


@dataclass
class LoadRun:
    """What the annotators saw, and how long each call took (seconds)."""

    acks: dict[str, Ack] = field(default_factory=dict)
    login_s: list[float] = field(default_factory=list)
    load_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)  # first try until the user sees "Saved"
    repeats: int = 0  # the same token sent again later (a reload): must come back as a duplicate
    races: int = 0  # the same token sent twice at once (a double click): one stored, one duplicate
    save_failed: list[str] = field(default_factory=list)  # messages of SaveFailed shown to a user
    user_errors: list[str] = field(default_factory=list)  # any other error an annotator saw
    problems: list[str] = field(default_factory=list)  # wrong answers (e.g. a repeat not a duplicate)
    unfinished: list[str] = field(default_factory=list)  # annotators stopped by the deadline
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _submit(
    db: Database, actor: auth.Actor, assignment_id: int, decision: QueryWork, run: LoadRun
) -> SubmitResult:
    """Submit like the page: on SaveFailed keep the decision and retry the same token."""
    for attempt in range(SAVE_ATTEMPTS):
        try:
            return submit(db, actor, assignment_id, decision)
        except SaveFailed as e:
            with run.lock:
                run.save_failed.append(f"{actor.name} {decision.client_token}: {e}")
            if attempt == SAVE_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _annotator(
    db: Database,
    dataset: str,
    name: str,
    run: LoadRun,
    logins: threading.Semaphore,
    deadline: float,
    *,
    repeat_every: int,
    race_every: int,
    think_s: float,
) -> None:
    pace = random.Random(name)
    try:
        t0 = time.perf_counter()
        with logins:
            actor = auth.authenticate(db, name, PASSWORD)
        with run.lock:
            run.login_s.append(time.perf_counter() - t0)
        if dataset not in my_datasets(db, actor):
            raise AssertionError(f"{name} has no queue in {dataset}")
        current = next_assignment(db, actor, dataset)
        n = 0
        while current is not None:
            if time.monotonic() > deadline:
                with run.lock:
                    run.unfinished.append(name)
                return
            t0 = time.perf_counter()
            task = load_task(db, actor, current)
            load_s = time.perf_counter() - t0
            token = f"{name}-{current}"
            decision = decision_for(task, actor.id, token)
            if think_s:  # looking at the query before submitting
                time.sleep(pace.uniform(0, 2 * think_s))
            n += 1
            t0 = time.perf_counter()
            if race_every and n % race_every == 0:
                result = _double_click(db, actor, current, decision, run)
            else:
                result = _submit(db, actor, current, decision, run)
            submit_s = time.perf_counter() - t0
            retried = any(f" {token}: " in m for m in run.save_failed)  # a retry may find it stored
            if result.duplicate and not retried:
                run.problems.append(f"{name}: first submit of {token} reported as a duplicate")
            ack = Ack(token, actor.id, current, task.query_id, result.submission_id, decision)
            with run.lock:
                run.acks[token] = ack
                run.load_s.append(load_s)
                run.submit_s.append(submit_s)
            if repeat_every and n % repeat_every == 0:
                again = _submit(db, actor, current, decision, run)
                with run.lock:
                    run.repeats += 1
                if not again.duplicate or again.submission_id != result.submission_id:
                    run.problems.append(f"{name}: repeated {token} gave {again}, first {result}")
            current = result.next_assignment_id
            if current is None:  # the page asks once more before showing "all done"
                current = next_assignment(db, actor, dataset)
    except Exception as e:  # anything else an annotator would have seen on the page
        with run.lock:
            run.user_errors.append(f"{name}: {type(e).__name__}: {e}")


def _double_click(
    db: Database, actor: auth.Actor, assignment_id: int, decision: QueryWork, run: LoadRun
) -> SubmitResult:
    """The same submit twice at the same moment (two requests of one session)."""
    results: list[SubmitResult] = []
    errors: list[str] = []
    gate = threading.Barrier(2, timeout=60)

    def click() -> None:
        try:
            gate.wait()
            results.append(_submit(db, actor, assignment_id, decision, run))
        except Exception as e:
            errors.append(f"{actor.name}: {type(e).__name__}: {e}")

    other = threading.Thread(target=click, name=f"{actor.name}-double-click")
    other.start()
    click()
    other.join(timeout=120)
    with run.lock:
        run.races += 1
        run.user_errors.extend(errors)
    if len(results) != 2:
        raise RuntimeError(
            f"double click of {decision.client_token}: {len(results)} answers, errors {errors}"
        )
    first, second = sorted(results, key=lambda r: r.duplicate)
    if first.duplicate or not second.duplicate or first.submission_id != second.submission_id:
        run.problems.append(f"{actor.name}: double click of {decision.client_token} gave {results}")
    return first


def run_annotators(
    db: Database,
    dataset: str,
    names: list[str],
    *,
    time_limit_s: float = 90.0,
    repeat_every: int = 4,
    race_every: int = 5,
    think_s: float = 0.0,
    run: LoadRun | None = None,
) -> LoadRun:
    """Every annotator in ``names`` works through their queue at once; returns what they saw.

    One thread per annotator (plus one more during a double click); each stops at the deadline,
    and threads still running after it are reported in ``unfinished``. Pass ``run`` to watch
    the acknowledgements arrive from another thread (read them under ``run.lock``). ``think_s``
    is the mean time an annotator looks at a query before submitting (0: submit at once, a stress
    test; people take seconds per query).
    """
    run = run if run is not None else LoadRun()
    logins = threading.Semaphore(MAX_LOGINS_AT_ONCE)
    deadline = time.monotonic() + time_limit_s
    threads = [
        threading.Thread(
            target=_annotator,
            args=(db, dataset, name, run, logins, deadline),
            kwargs={"repeat_every": repeat_every, "race_every": race_every, "think_s": think_s},
            name=f"annotator-{name}",
            daemon=True,
        )
        for name in names
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
    run.wall_s = time.perf_counter() - t0
    run.unfinished.extend(t.name for t in threads if t.is_alive())
    return run


# --------------------------------------------------------------------------- checking


def verify(db: Database, dataset: str, run: LoadRun) -> list[str]:
    """Compare the database with what the annotators were told; returns what disagrees.

    Every acknowledged token has exactly one submission with its judgments (label, provenance,
    submission) and verdict; there is no submission nobody was told about; every assignment of
    the dataset is done; no judgment was written twice (no history rows).
    """
    problems: list[str] = []
    with db.read() as s:
        ds_id = s.scalar(select(Dataset.id).where(Dataset.name == dataset))
        stored = {
            row.client_token: row
            for row in s.execute(
                select(Submission.client_token, Submission.id, Submission.user_id, Submission.query_id)
                .join(Query, Query.id == Submission.query_id)
                .where(Query.dataset_id == ds_id)
            )
        }
        judgments: dict[tuple[int, int], dict[int, tuple[str, str, int | None]]] = {}
        for j in s.execute(
            select(
                Judgment.user_id,
                Judgment.query_id,
                Judgment.item_id,
                Judgment.label,
                Judgment.provenance,
                Judgment.submission_id,
            )
            .join(Query, Query.id == Judgment.query_id)
            .where(Query.dataset_id == ds_id)
        ):
            key = (j.user_id, j.query_id)
            if j.item_id in judgments.setdefault(key, {}):
                problems.append(
                    f"judgment of user {j.user_id}, query {j.query_id}, item {j.item_id} stored twice"
                )
            judgments[key][j.item_id] = (j.label, j.provenance, j.submission_id)
        verdicts = {
            (v.user_id, v.query_id): v
            for v in s.execute(
                select(
                    QueryVerdict.user_id,
                    QueryVerdict.query_id,
                    QueryVerdict.verdict,
                    QueryVerdict.submission_id,
                    QueryVerdict.revision_id,
                )
                .join(Query, Query.id == QueryVerdict.query_id)
                .where(Query.dataset_id == ds_id)
            )
        }
        revisions = dict(s.execute(select(QueryRevision.id, QueryRevision.text)).all())
        open_assignments = s.scalar(
            select(func.count())
            .select_from(Assignment)
            .join(Query)
            .where(Query.dataset_id == ds_id, Assignment.status != "done")
        )
        history = s.scalar(
            select(func.count())
            .select_from(JudgmentHistory)
            .join(Judgment)
            .join(Query, Query.id == Judgment.query_id)
            .where(Query.dataset_id == ds_id)
        )

    for token in sorted(set(stored) - set(run.acks)):
        problems.append(f"submission {token} is stored but no annotator was told it was saved")
    for token, ack in sorted(run.acks.items()):
        row = stored.get(token)
        if row is None:
            problems.append(f"acknowledged submission {token} is lost")
            continue
        if (row.id, row.user_id, row.query_id) != (ack.submission_id, ack.user_id, ack.query_id):
            problems.append(f"submission {token} is stored as {tuple(row)}, acknowledged as {ack}")
        want = {i: (v.label, v.provenance, ack.submission_id) for i, v in ack.decision.labels.items()}
        got = judgments.get((ack.user_id, ack.query_id), {})
        if got != want:
            problems.append(f"judgments of {token}: stored {got}, submitted {want}")
        verdict = verdicts.get((ack.user_id, ack.query_id))
        if verdict is None or (verdict.verdict, verdict.submission_id) != (
            ack.decision.verdict,
            ack.submission_id,
        ):
            problems.append(f"verdict of {token}: stored {verdict}, submitted {ack.decision.verdict}")
        elif ack.decision.verdict == "rewrite" and revisions.get(verdict.revision_id) != ack.decision.rewrite:
            problems.append(f"rewrite of {token} is not stored")
    if open_assignments:
        problems.append(f"{open_assignments} assignments are not done")
    if history:
        problems.append(f"{history} judgments were changed after they were stored (each was submitted once)")
    return problems


# --------------------------------------------------------------------------- figures


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile by the nearest-rank method (no interpolation)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _machine(db: Database) -> str:
    base = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    if db.is_sqlite:
        return f"{base}, SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
    with db.read() as s:
        version = s.execute(select(func.current_setting("server_version"))).scalar()
        fsync = s.execute(select(func.current_setting("fsync"))).scalar()
        sync = s.execute(select(func.current_setting("synchronous_commit"))).scalar()
    return f"{base}, PostgreSQL {version} on loopback (fsync={fsync}, synchronous_commit={sync})"


def append_row(figure: str, value: str, machine: str, command: str) -> None:
    if not RESULTS.exists():
        RESULTS.write_text(HEADER, encoding="utf-8")
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(f"| {figure} | {value} | {machine} | `{command}` | {date} |\n")


def _fresh_postgres(admin_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"qrels_bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


def bench_one(url: str, work: Path, args: argparse.Namespace) -> tuple[LoadRun, list[str], str]:
    from db import migrate
    from services.datasets.assignment import assign

    migrate.upgrade(url)
    db = Database(url)
    build_dataset(db, work / "bundle", "load", n_queries=args.queries)
    hasher = CHEAP_HASHER if args.cheap_hashing else None
    names = add_annotators(db, args.annotators, hasher=hasher)
    assign(db, "load", overlap=args.overlap)
    if args.cheap_hashing:
        with cheap_hashing():
            run = run_annotators(db, "load", names, time_limit_s=args.time_limit, think_s=args.think_s)
    else:
        run = run_annotators(db, "load", names, time_limit_s=args.time_limit, think_s=args.think_s)
    return run, verify(db, "load", run), _machine(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds before annotators stop")
    parser.add_argument(
        "--think-s", type=float, default=0.0, help="mean seconds on a query before submitting (0: stress)"
    )
    parser.add_argument(
        "--cheap-hashing", action="store_true", help="fast argon2: submits without a login burst"
    )
    parser.add_argument("--no-append", action="store_true", help="print figures only")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="qrels-bench-load-"))
    os.environ.setdefault("QRELS_DATA_DIR", str(work / "data"))
    backends = [("SQLite", f"sqlite:///{work / 'load.db'}")]
    pg_admin = os.environ.get("QRELS_TEST_PG_URL")
    if pg_admin:
        backends.append(("PostgreSQL", _fresh_postgres(pg_admin)))
    command = "python bench/bench_load.py " + " ".join(sys.argv[1:])
    exit_code = 0
    for backend, url in backends:
        try:
            run, problems, machine = bench_one(url, work / backend, args)
        finally:
            if backend == "PostgreSQL":
                from db.session import dispose_engine

                dispose_engine(url)
                _drop_postgres(pg_admin, url)
        ok = not (problems or run.user_errors or run.unfinished or run.problems)
        n = len(run.submit_s)
        logins = "argon2 fast setting" if args.cheap_hashing else "real argon2, logins in the run"
        pace = f"{args.think_s:g} s mean think time" if args.think_s else "no think time (stress)"
        figure = (
            f"submit under load, {backend}: {args.annotators} annotators at once, "
            f"{args.queries} queries x overlap {args.overlap}, {pace} ({logins})"
        )
        value = (
            f"p50 {percentile(run.submit_s, 50) * 1000:.0f} ms, p99 {percentile(run.submit_s, 99) * 1000:.0f} ms, "
            f"max {max(run.submit_s, default=0) * 1000:.0f} ms; {n / run.wall_s:.1f} submits/s over {run.wall_s:.1f} s; "
            f"load_task p99 {percentile(run.load_s, 99) * 1000:.0f} ms; login p99 {percentile(run.login_s, 99):.2f} s; "
            f"{n} stored + {run.repeats} repeats + {run.races} double clicks, "
            f"{'exactly once' if ok else 'FAILED'}; SaveFailed shown {len(run.save_failed)}"
        )
        print(f"{figure}: {value}", flush=True)
        for line in (problems + run.problems + run.user_errors + run.save_failed + run.unfinished)[:20]:
            print(f"  {line}", flush=True)
        if not args.no_append:
            append_row(figure, value, machine, command.strip())
        exit_code |= 0 if ok else 1
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
