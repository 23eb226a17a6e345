"""Several app server processes on one database: no query goes past its overlap, none twice to one
annotator, while other processes pull their queues and submit.

Each process is this module run as a script (``python -m tests.test_multiprocess_assign ...``):
*assigners* call ``assign`` in rounds of rising overlap with different annotator subsets (what
admins on different app servers would do), *annotators* log in and work through their queues at the
same time. All start together on a file gate. Runs on PostgreSQL (skipped, with the reason, when
``QRELS_TEST_PG_URL`` is not set) and on a SQLite file in WAL mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUERIES = 60
ANNOTATORS = 8
OVERLAP = 3
ASSIGNERS = 4
WORKERS = 3  # annotator processes, one annotator each
GATE_TIMEOUT_S = 90
RUN_TIMEOUT_S = 150


# --------------------------------------------------------------------------- worker processes


def _wait_for(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.001)


def _assigner(db, gate: Path, index: int) -> dict:
    from services.datasets.assignment import assign

    names = [f"mp{i:03d}" for i in range(ANNOTATORS)]
    new = []
    for overlap in range(1, OVERLAP + 1):
        # A different subset per process and round, each large enough for the overlap; the
        # annotators that the annotator processes log in as are in every one, so they get work.
        others = names[WORKERS:]
        start = index * 2 + overlap
        subset = names[:WORKERS] + [others[(start + k) % len(others)] for k in range(2)]
        new.append(assign(db, "mp", overlap=overlap, annotators=subset).n_new)
    return {"n_new": new}


def _annotator(db, gate: Path, index: int) -> dict:
    from bench.bench_load import CHEAP_HASHER, PASSWORD, decision_for
    from services.annotation.queue import next_assignment
    from services.annotation.submit import submit
    from services.annotation.task import load_task
    from services.core import auth

    auth._hasher = CHEAP_HASHER
    actor = auth.authenticate(db, f"mp{index:03d}", PASSWORD)
    done = gate.with_name("assigners-done")
    submitted = []
    while True:
        current = next_assignment(db, actor, "mp")
        if current is None:
            if done.exists() and next_assignment(db, actor, "mp") is None:
                break
            time.sleep(0.01)
            continue
        task = load_task(db, actor, current)  # PermissionDenied if it were someone else's
        result = submit(db, actor, current, decision_for(task, actor.id, f"mp-{index}-{current}"))
        submitted.append([current, task.query_id, result.submission_id])
    return {"user_id": actor.id, "submitted": submitted}


def _worker_main(role: str, url: str, folder: str, index: int) -> None:
    from db.session import Database

    gate = Path(folder) / "go"
    db = Database(url)
    with db.read() as s:  # connect before the gate, so the gate releases real work
        s.connection()
    (Path(folder) / f"ready-{role}-{index}").touch()
    _wait_for(gate, GATE_TIMEOUT_S)
    result = (_assigner if role == "assigner" else _annotator)(db, gate, index)
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- the test


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    from db.session import dispose_engine
    from tests.conftest import PG_ADMIN_URL, _drop_postgres, _fresh_postgres_url

    if request.param == "postgresql":
        if not PG_ADMIN_URL:
            pytest.skip(
                "no PostgreSQL configured: set QRELS_TEST_PG_URL (bash tests/pg_server.sh start; "
                "export QRELS_TEST_PG_URL=$(bash tests/pg_server.sh url)) to run several app "
                "processes against one PostgreSQL database"
            )
        url = _fresh_postgres_url()
    else:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("QRELS_DB_URL", url)
    yield url
    dispose_engine(url)
    if request.param == "postgresql":
        _drop_postgres(url)


def _start(role: str, index: int, url: str, folder: Path, data_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "QRELS_DB_URL": url, "QRELS_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_multiprocess_assign", role, url, str(folder), str(index)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs: list[subprocess.Popen[str]], timeout_s: float) -> list[dict]:
    results = []
    deadline = time.monotonic() + timeout_s
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert p.returncode == 0, f"process {p.args[3:]} failed:\n{err[-3000:]}"
            lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
            assert lines, f"process {p.args[3:]} printed no result:\n{out[-2000:]}\n{err[-2000:]}"
            results.append(json.loads(lines[-1].removeprefix("RESULT ")))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_app_processes_never_push_a_query_past_its_overlap(
    shared_url: str, tmp_path: Path, data_dir: Path
) -> None:
    from sqlalchemy import select

    from bench.bench_load import CHEAP_HASHER, add_annotators, build_dataset
    from db import migrate
    from db.models import Assignment, Query, Submission
    from db.session import Database

    migrate.upgrade(shared_url)
    db = Database(shared_url)
    build_dataset(db, tmp_path / "bundle", "mp", n_queries=QUERIES)
    add_annotators(db, ANNOTATORS, prefix="mp", hasher=CHEAP_HASHER)
    folder = tmp_path / "gate"
    folder.mkdir()

    assigners = [_start("assigner", i, shared_url, folder, data_dir) for i in range(ASSIGNERS)]
    workers = [_start("annotator", i, shared_url, folder, data_dir) for i in range(WORKERS)]
    everyone = assigners + workers
    try:
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while len(list(folder.glob("ready-*"))) < len(everyone):
            crashed = [p for p in everyone if p.poll() is not None]
            assert not crashed, f"a process died before the gate: {crashed[0].communicate()[1][-3000:]}"
            assert time.monotonic() < deadline, "processes did not get ready in time"
            time.sleep(0.02)
        (folder / "go").touch()
        assigned = _finish(assigners, RUN_TIMEOUT_S)
        (folder / "assigners-done").touch()
        worked = _finish(workers, RUN_TIMEOUT_S)
    finally:
        for p in everyone:
            if p.poll() is None:
                p.kill()
                p.wait()

    with db.read() as s:
        rows = s.execute(
            select(
                Assignment.id, Assignment.query_id, Assignment.user_id, Assignment.position, Assignment.status
            )
        ).all()
        n_queries = len(s.scalars(select(Query.id)).all())
        stored = {r.client_token: r for r in s.scalars(select(Submission))}
    per_query = Counter(r.query_id for r in rows)
    assert len(per_query) == n_queries == QUERIES
    assert set(per_query.values()) == {OVERLAP}, "a query has more or fewer annotators than the overlap"
    pairs = Counter((r.query_id, r.user_id) for r in rows)
    assert max(pairs.values()) == 1, "an annotator got the same query twice"
    queue_slots = Counter((r.user_id, r.position) for r in rows)
    assert max(queue_slots.values()) == 1, "two assignments share one queue position"
    assert sum(sum(a["n_new"]) for a in assigned) == QUERIES * OVERLAP  # each slot made once

    owner = {r.id: r.user_id for r in rows}
    for w in worked:
        mine = [r for r in rows if r.user_id == w["user_id"]]
        assert w["submitted"], "an annotator process got no work"
        assert sorted(a for a, _, _ in w["submitted"]) == sorted(r.id for r in mine)  # drained, once each
        assert all(owner[a] == w["user_id"] for a, _, _ in w["submitted"])
        assert all(r.status == "done" for r in mine)
        for assignment_id, query_id, submission_id in w["submitted"]:
            row = stored[f"mp-{worked.index(w)}-{assignment_id}"]
            assert (row.id, row.query_id, row.user_id) == (submission_id, query_id, w["user_id"])


if __name__ == "__main__":
    _worker_main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
