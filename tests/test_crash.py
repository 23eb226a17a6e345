"""Processes killed with SIGKILL mid-work: nothing acknowledged is lost, nothing stored is torn.

- A submitting app process (four annotators in threads) is killed in the middle of a stream of
  submits, restarted, killed again and restarted to the end: every submission it acknowledged is
  stored with its judgments and verdict, each stored submission is whole, and the database
  passes ``PRAGMA integrity_check`` (SQLite) or the consistency queries below (PostgreSQL).
- An embedding job dies while writing an embedding shard: a rerun embeds only what is missing
  and every stored vector is the fresh embedding of its own key.
- A ranking dies while writing its new generation of runs (between two of its short
  transactions): annotators still see the previous runs, its job is reported failed at once (its
  process is gone), and a new ranking starts, deletes the half-written generation and writes the
  same candidates.

tests/test_models_store.py covers an interrupted shard write inside one process and
tests/test_ranking.py a rerun after a finished embed; this file adds the killed process.
Children are this module run as a script (``python -m tests.test_crash ROLE JSON``); where the
kill lands is chosen by the child itself (it SIGKILLs itself at a fixed point) or by the parent
after a fixed number of acknowledgements, so every run checks the same thing.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from db.session import Database, dispose_engine

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 120
ANNOTATORS = 4
QUERIES = 40
OVERLAP = 2
ACKS_BEFORE_KILL = (12, 12)  # two kills, each after this many more acknowledged submits

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_NAME = "qrels-crash-tiny"
EMBED_CHUNK = 2  # vectors per shard in these tests, so a small dataset has several shards


# --------------------------------------------------------------------------- child processes


def _child_submitter(args: dict[str, Any]) -> None:
    """Annotators in threads submitting through the services; one ``ACK token id`` line each."""
    from bench.bench_load import CHEAP_HASHER, PASSWORD, decision_for
    from services.annotation.queue import next_assignment
    from services.annotation.submit import submit
    from services.annotation.task import load_task
    from services.core import auth
    from services.core.errors import SaveFailed

    auth._hasher = CHEAP_HASHER
    db = Database(args["url"])
    out = threading.Lock()

    def work(name: str) -> None:
        actor = auth.authenticate(db, name, PASSWORD)
        while (current := next_assignment(db, actor, "crash")) is not None:
            task = load_task(db, actor, current)
            decision = decision_for(task, actor.id, f"crash-{current}")
            for attempt in range(5):
                try:
                    result = submit(db, actor, current, decision)
                    break
                except SaveFailed:
                    if attempt == 4:
                        raise
                    time.sleep(0.2)
            with out:
                sys.stdout.write(f"ACK {decision.client_token} {result.submission_id}\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=work, args=(n,)) for n in args["names"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("DONE", flush=True)


def _tiny_embedder(args: dict[str, Any]):
    import open_clip

    from models.embedder import load_clip

    open_clip.add_model_config(Path(args["configs"]))
    return load_clip(TINY_NAME, args["checkpoint"], device="cpu")


def _child_embed(args: dict[str, Any]) -> None:
    """Embed with small shards and die (SIGKILL) while writing the keys file of shard ``die_at``."""
    from models import store as store_module
    from services.ranking import embed as ranking

    ranking.EMBED_CHUNK = EMBED_CHUNK
    original = store_module._atomic_write
    writes = 0

    def dying_write(path: Path, write) -> None:
        nonlocal writes
        writes += 1
        if writes == args["die_at_write"]:
            data = io.BytesIO()
            write(data)
            temp = path.with_name(f".tmp-{path.name}.killed00")
            with temp.open("wb") as fh:  # half of the file reached the disk, then the process died
                fh.write(data.getvalue()[: len(data.getvalue()) // 2])
                fh.flush()
                os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        original(path, write)

    store_module._atomic_write = dying_write
    embedder = _tiny_embedder(args)
    ranking.embed_dataset(Database(args["url"]), "shop", embedder=embedder, data_dir=Path(args["data_dir"]))
    print("FINISHED WITHOUT DYING", flush=True)


def _child_rank(args: dict[str, Any]) -> None:
    """Rank, and die (SIGKILL) after two batches of the new generation's rows are committed."""
    from services.ranking import rank as ranking

    batches = 0

    def die_after_two(_n: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    ranking.rank_dataset(
        Database(args["url"]),
        "shop",
        k=5,
        embedder=_tiny_embedder(args),
        data_dir=Path(args["data_dir"]),
        after_batch=die_after_two,
    )
    print("FINISHED WITHOUT DYING", flush=True)


CHILDREN = {"submitter": _child_submitter, "embed": _child_embed, "rank": _child_rank}


# --------------------------------------------------------------------------- helpers


def _spawn(role: str, args: dict[str, Any], data_dir: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "QRELS_DB_URL": args["url"],
        "QRELS_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_crash", role, json.dumps(args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_to_death(role: str, args: dict[str, Any], data_dir: Path) -> str:
    """Run a child that kills itself; returns its stdout (fails if it exits any other way)."""
    proc = _spawn(role, args, data_dir)
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        f"{role} child did not die as planned ({proc.returncode}):\n{err[-3000:]}"
    )
    return out


def _submit_stream(args: dict[str, Any], data_dir: Path, kill_after: int | None) -> dict[str, int]:
    """Run the submitter; SIGKILL it after ``kill_after`` acknowledgements (None: to the end).

    Returns every acknowledged token with its submission id, the lines read after the kill too
    (they were printed, so the user saw them).
    """
    proc = _spawn("submitter", args, data_dir)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    acks: dict[str, int] = {}
    done = False
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                break
            if line.startswith("ACK "):
                _, token, sid = line.split()
                acks[token] = int(sid)
                if kill_after is not None and len(acks) == kill_after:
                    os.kill(proc.pid, signal.SIGKILL)
            done = done or line.startswith("DONE")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    if kill_after is None:
        assert proc.returncode == 0 and done, f"submitter failed ({proc.returncode}):\n{err[-3000:]}"
    else:
        assert proc.returncode == -signal.SIGKILL, f"submitter ended before the kill:\n{err[-3000:]}"
    return acks


def consistency_problems(db: Database) -> list[str]:
    """Cross-table invariants of stored annotation work (no undo in these tests).

    A done assignment has a live submission and vice versa; every submission has its verdict;
    every judgment belongs to a submission of the same annotator and query.
    """
    checks = {
        "done assignment without a submission": """
            SELECT a.id FROM assignments a WHERE a.status = 'done' AND NOT EXISTS
              (SELECT 1 FROM submissions s WHERE s.assignment_id = a.id AND s.undone_at IS NULL)""",
        "submission of an assignment not done": """
            SELECT s.id FROM submissions s JOIN assignments a ON a.id = s.assignment_id
            WHERE a.status <> 'done' AND s.undone_at IS NULL""",
        "submission without its verdict": """
            SELECT s.id FROM submissions s WHERE NOT EXISTS
              (SELECT 1 FROM query_verdicts v WHERE v.submission_id = s.id)""",
        "judgment without a matching submission": """
            SELECT j.id FROM judgments j LEFT JOIN submissions s ON s.id = j.submission_id
            WHERE s.id IS NULL OR s.user_id <> j.user_id OR s.query_id <> j.query_id""",
        "submission of another annotator's assignment": """
            SELECT s.id FROM submissions s JOIN assignments a ON a.id = s.assignment_id
            WHERE a.user_id <> s.user_id OR a.query_id <> s.query_id""",
    }
    problems = []
    with db.read() as s:
        for what, sql in checks.items():
            ids = s.execute(text(sql)).scalars().all()
            if ids:
                problems.append(f"{what}: {ids[:10]}")
    return problems


def sqlite_integrity(url: str) -> tuple[str, list[tuple]]:
    """``PRAGMA integrity_check`` and ``foreign_key_check`` on a fresh connection (a restart)."""
    conn = sqlite3.connect(make_url(url).database)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0], conn.execute(
            "PRAGMA foreign_key_check"
        ).fetchall()
    finally:
        conn.close()


# --------------------------------------------------------------------------- submits


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_killed_app_keeps_every_acknowledged_submission(db: Database, tmp_path: Path, data_dir: Path) -> None:
    from bench.bench_load import CHEAP_HASHER, add_annotators, build_dataset, decision_for
    from db.models import Assignment, Judgment, QueryVerdict, Submission, User
    from services.annotation.task import load_task
    from services.core.auth import Actor
    from services.datasets.assignment import assign

    build_dataset(db, tmp_path / "bundle", "crash", n_queries=QUERIES)
    names = add_annotators(db, ANNOTATORS, prefix="crash", hasher=CHEAP_HASHER)
    assign(db, "crash", overlap=OVERLAP)
    dispose_engine(db.url)  # this process holds no connection while the app dies
    args = {"url": db.url, "names": names}

    acks: dict[str, int] = {}
    for kill_after in ACKS_BEFORE_KILL:
        acks.update(_submit_stream(args, data_dir, kill_after))
        if db.is_sqlite:
            assert sqlite_integrity(db.url) == ("ok", [])
    acks.update(_submit_stream(args, data_dir, None))  # restart, run to the end

    db = Database(db.url)
    if db.is_sqlite:
        assert sqlite_integrity(db.url) == ("ok", [])
    assert consistency_problems(db) == []
    with db.read() as s:
        stored = {r.client_token: r for r in s.scalars(select(Submission))}
        users = {u.id: Actor(u.id, u.name, u.role) for u in s.scalars(select(User))}
        assignments = s.execute(select(Assignment.id, Assignment.status)).all()
        judgments: dict[tuple[int, int], dict[int, tuple[str, str, int]]] = {}
        for j in s.scalars(select(Judgment)):
            judgments.setdefault((j.user_id, j.query_id), {})[j.item_id] = (
                j.label,
                j.provenance,
                j.submission_id,
            )
        verdicts = {
            (v.user_id, v.query_id): (v.verdict, v.submission_id) for v in s.scalars(select(QueryVerdict))
        }

    assert {token: stored[token].id for token in acks if token in stored} == acks, (
        "an acknowledged submit is lost"
    )
    # Stored but never acknowledged: committed, then killed before the line was printed; at most
    # one per annotator thread and kill.
    assert len(set(stored) - set(acks)) <= ANNOTATORS * len(ACKS_BEFORE_KILL)
    assert len(stored) == QUERIES * OVERLAP and all(status == "done" for _, status in assignments)
    for token, row in stored.items():  # every stored submission is whole: what was submitted
        task = load_task(db, users[row.user_id], row.assignment_id)
        decision = decision_for(task, row.user_id, token)
        want = {i: (v.label, v.provenance, row.id) for i, v in decision.labels.items()}
        assert judgments[(row.user_id, row.query_id)] == want, token
        assert verdicts[(row.user_id, row.query_id)] == (decision.verdict, row.id), token


def test_consistency_queries_find_a_torn_submission(db: Database, tmp_path: Path, data_dir: Path) -> None:
    """The checker itself: a submission whose verdict and judgments are missing is reported."""
    from sqlalchemy import delete

    from bench.bench_load import CHEAP_HASHER, add_annotators, build_dataset, run_annotators
    from db.models import Judgment, QueryVerdict
    from services.core import auth
    from services.datasets.assignment import assign

    build_dataset(db, tmp_path / "bundle", "crash", n_queries=2)
    names = add_annotators(db, 1, prefix="crash", hasher=CHEAP_HASHER)
    assign(db, "crash", overlap=1)
    saved = auth._hasher
    auth._hasher = CHEAP_HASHER
    try:
        run = run_annotators(db, "crash", names, time_limit_s=60, repeat_every=0, race_every=0)
    finally:
        auth._hasher = saved
    assert consistency_problems(db) == []
    sid = next(iter(run.acks.values())).submission_id
    with db.write() as s:
        s.execute(delete(QueryVerdict).where(QueryVerdict.submission_id == sid))
        s.execute(delete(Judgment).where(Judgment.submission_id == sid))
    assert consistency_problems(db) == [f"submission without its verdict: [{sid}]"]


# --------------------------------------------------------------------------- embedding and ranking


@pytest.fixture
def tiny_model(tmp_path: Path) -> dict[str, str]:
    """A tiny random open_clip model saved as a checkpoint, so parent and child load the same one."""
    import open_clip
    import torch

    from models.embedder import load_clip

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / f"{TINY_NAME}.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(configs)
    torch.manual_seed(0)
    random_model = load_clip(TINY_NAME, None, device="cpu", allow_random=True)
    checkpoint = tmp_path / "tiny.pt"
    torch.save(random_model.model.state_dict(), checkpoint)
    return {"configs": str(configs), "checkpoint": str(checkpoint)}


def _import_shop(db: Database, folder: Path) -> Database:
    from services.ingest.importer import import_bundle
    from tests.bundles import make_bundle

    import_bundle(db, make_bundle(folder, n_items=12, n_queries=4), "shop")
    return db


@pytest.fixture
def shop(db: Database, tmp_path: Path, data_dir: Path) -> Database:
    """12 items (6 distinct images), 4 queries, on every backend under test."""
    return _import_shop(db, tmp_path / "b")


@pytest.fixture
def sqlite_shop(sqlite_db: Database, tmp_path: Path) -> Database:
    """The same on SQLite only: the embedding store is on disk, the database only lists items."""
    return _import_shop(sqlite_db, tmp_path / "b")


def _stored_equals_fresh(db: Database, data_dir: Path, embedder) -> int:
    """Check every stored vector against a fresh embedding of its own key; returns how many."""
    from db.models import Item, Query
    from models.store import EmbeddingStore, item_text_key, text_key
    from services.core.media import MediaStore

    store = EmbeddingStore(data_dir / "embeddings", embedder.model_key)
    media = MediaStore(data_dir)
    with db.read() as s:
        items = s.execute(select(Item.title, Item.text, Item.image_sha256, Item.image_ext)).all()
        queries = s.scalars(select(Query.text)).all()
    images = {
        i.image_sha256: media.original_path(i.image_sha256, i.image_ext) for i in items if i.image_sha256
    }
    texts = {item_text_key(i.title, i.text): f"{i.title}\n{i.text}" for i in items}
    query_texts = {text_key(q): q for q in queries}
    checked = 0
    for kind, wanted in (("image", images), ("text", texts), ("query", query_texts)):
        keys = store.keys(kind)
        assert sorted(keys) == sorted(wanted), f"stored {kind} keys differ from the dataset's"
        if kind == "image":
            fresh = embedder.embed_image_files([(k, wanted[k]) for k in keys], num_workers=0).vectors
        else:
            fresh = embedder.embed_texts([wanted[k] for k in keys])
        stored = store.get(kind, keys).astype(np.float32)
        np.testing.assert_allclose(stored, fresh.astype(np.float32), rtol=0, atol=2e-3, err_msg=kind)
        # The tolerance is far below the distance between vectors, so a row under the wrong key fails.
        distance = np.abs(stored[:, None, :] - stored[None, :, :]).max(axis=2)
        assert (distance + np.eye(len(keys)) * 9).min() > 0.05, f"{kind} vectors too alike to tell apart"
        checked += len(keys)
    return checked


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_embedding_killed_mid_shard_resumes_with_only_the_missing_chunks(
    sqlite_shop: Database, data_dir: Path, tiny_model: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = sqlite_shop
    from models.store import EmbeddingStore
    from services.ranking import embed as ranking

    embedder = _tiny_embedder(tiny_model)
    folder = data_dir / "embeddings" / embedder.model_key / "image"
    # Writes: shard 1 .npy, shard 1 .keys, shard 2 .npy, shard 2 .keys <- killed half-way here.
    _run_to_death(
        "embed", {**tiny_model, "url": shop.url, "data_dir": str(data_dir), "die_at_write": 4}, data_dir
    )
    assert EmbeddingStore(data_dir / "embeddings", embedder.model_key).count("image") == EMBED_CHUNK
    assert len(list(folder.glob("*.npy"))) == 2 and len(list(folder.glob(".tmp-*"))) == 1  # orphan + torn

    monkeypatch.setattr(ranking, "EMBED_CHUNK", EMBED_CHUNK)
    embedded: list[str] = []
    original = embedder.embed_image_files

    def counting(entries, **kw):
        embedded.extend(key for key, _ in entries)
        return original(entries, **kw)

    monkeypatch.setattr(embedder, "embed_image_files", counting)
    report = ranking.embed_dataset(shop, "shop", embedder=embedder, data_dir=data_dir)
    monkeypatch.undo()
    assert report.images_stored_before == EMBED_CHUNK  # the finished shard was not redone
    assert report.images_embedded == len(embedded) == 6 - EMBED_CHUNK
    assert (report.texts_embedded, report.queries_embedded, report.failed) == (12, 4, [])
    assert _stored_equals_fresh(shop, data_dir, embedder) == 6 + 12 + 4
    again = ranking.embed_dataset(shop, "shop", embedder=embedder, data_dir=data_dir)
    assert (again.images_embedded, again.texts_embedded, again.queries_embedded) == (0, 0, 0)

    store = EmbeddingStore(data_dir / "embeddings", embedder.model_key)
    store.compact("image")  # the leftovers of the killed write go; the vectors stay
    assert not list(folder.glob(".tmp-*")) and len(list(folder.glob("*.npy"))) == 1
    assert _stored_equals_fresh(shop, data_dir, embedder) == 6 + 12 + 4


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ranking_killed_mid_write_keeps_the_previous_runs_and_a_new_one_starts(
    shop: Database, data_dir: Path, tiny_model: dict[str, str]
) -> None:
    from db.models import Candidate, Dataset, RankerRun
    from services.ranking import rank as ranking
    from services.ranking.embed import embed_dataset
    from services.ranking.jobs import latest_jobs

    embedder = _tiny_embedder(tiny_model)
    embed_dataset(shop, "shop", embedder=embedder, data_dir=data_dir)
    ranking.rank_dataset(shop, "shop", k=5, embedder=embedder, data_dir=data_dir)

    def candidates() -> list[tuple]:
        with shop.read() as s:
            rows = s.execute(
                select(
                    RankerRun.name,
                    Candidate.query_id,
                    Candidate.item_id,
                    Candidate.rank,
                    Candidate.score,
                    Candidate.rankers,
                )
                .join(RankerRun, RankerRun.id == Candidate.run_id)
                .join(Dataset, Dataset.id == RankerRun.dataset_id)
                .where(RankerRun.generation == Dataset.active_generation)  # what annotators see
                .order_by(RankerRun.name, Candidate.query_id, Candidate.rank)
            ).all()
        return [(*r[:4], round(r[4], 5), json.dumps(r[5], sort_keys=True)) for r in rows]

    before = candidates()
    assert {r[0] for r in before} == {"clip_image", "clip_text", "bm25", "hybrid", "pooled"}
    dispose_engine(shop.url)
    _run_to_death("rank", {**tiny_model, "url": shop.url, "data_dir": str(data_dir)}, data_dir)
    shop = Database(shop.url)
    if shop.is_sqlite:
        assert sqlite_integrity(shop.url) == ("ok", [])
    assert candidates() == before  # annotators still see the previous runs
    with shop.read() as s:
        assert len(set(s.scalars(select(RankerRun.generation)))) == 2  # and a half-written generation
    killed = latest_jobs(shop, "shop", limit=1)[0]
    assert killed.status == "failed" and "no heartbeat" in killed.message  # its process is gone
    report = ranking.rank_dataset(shop, "shop", k=5, embedder=embedder, data_dir=data_dir)
    assert report.generation == 2  # the half-written generation was deleted first, its number reused
    assert candidates() == before  # and the rerun writes the same ranking
    with shop.read() as s:
        assert s.scalar(select(func.count()).select_from(RankerRun)) == 5  # the half-written runs are gone


if __name__ == "__main__":
    CHILDREN[sys.argv[1]](json.loads(sys.argv[2]))
