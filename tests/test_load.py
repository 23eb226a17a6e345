"""Fifty annotators at once, on SQLite (WAL) and PostgreSQL: every judgment stored exactly once.

The simulation is bench/bench_load.py's (figures: ``python bench/bench_load.py``): one thread per
annotator through the workbench's service calls, submits retried with the same client token,
repeats and double clicks on purpose. Sized to finish in well under a minute per backend on two
cores; each thread stops at a deadline so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_load
from db.session import Database
from services.core import auth
from services.datasets.assignment import assign

ANNOTATORS = 50
QUERIES = 100
OVERLAP = 3


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_fifty_annotators_at_once_store_every_judgment_exactly_once(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fast argon2 setting: logins stay in the run (a write each) without a minute of hashing.
    monkeypatch.setattr(auth, "_hasher", bench_load.CHEAP_HASHER)
    bench_load.build_dataset(db, tmp_path / "bundle", "load", n_queries=QUERIES)
    names = bench_load.add_annotators(db, ANNOTATORS, hasher=bench_load.CHEAP_HASHER)
    assert assign(db, "load", overlap=OVERLAP).n_new == QUERIES * OVERLAP

    run = bench_load.run_annotators(db, "load", names, time_limit_s=120, repeat_every=4, race_every=5)

    assert run.unfinished == [], "annotators still working at the deadline"
    assert run.user_errors == []
    assert not [m for m in run.save_failed if "locked" in m], "'database is locked' reached a user"
    assert run.save_failed == []
    assert run.problems == []  # repeats and double clicks came back as duplicates of the first
    assert len(run.login_s) == ANNOTATORS
    assert len(run.acks) == QUERIES * OVERLAP
    assert run.repeats > 0 and run.races > 0
    assert bench_load.verify(db, "load", run) == []


def test_verify_notices_a_lost_or_unannounced_submission(db: Database, tmp_path: Path, monkeypatch) -> None:
    """The checker itself: a stored row nobody was told about, and an acknowledged one missing."""
    from sqlalchemy import delete, select

    from db.models import Judgment, QueryVerdict, Submission

    monkeypatch.setattr(auth, "_hasher", bench_load.CHEAP_HASHER)
    bench_load.build_dataset(db, tmp_path / "bundle", "load", n_queries=4)
    names = bench_load.add_annotators(db, 2, hasher=bench_load.CHEAP_HASHER)
    assign(db, "load", overlap=1)
    run = bench_load.run_annotators(db, "load", names, time_limit_s=60, repeat_every=0, race_every=0)
    assert bench_load.verify(db, "load", run) == []

    lost, unannounced = sorted(run.acks)[:2]
    del run.acks[unannounced]
    with db.write() as s:
        sid = s.scalar(select(Submission.id).where(Submission.client_token == lost))
        s.execute(delete(Judgment).where(Judgment.submission_id == sid))
        s.execute(delete(QueryVerdict).where(QueryVerdict.submission_id == sid))
        s.execute(delete(Submission).where(Submission.id == sid))
    problems = bench_load.verify(db, "load", run)
    assert any(lost in p and "lost" in p for p in problems)
    assert any(unannounced in p and "no annotator was told" in p for p in problems)
