"""A live app server and Debian's Chromium for the browser tests (Playwright for Python)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def ranked_demo(root: Path, *, items: int, queries: int, seed: int, k: int) -> Iterator[tuple[Any, Path]]:
    """A demo of ``items`` and ``queries`` in a fresh SQLite database under ``root``, imported,
    embedded and ranked with the demo model; the app's environment points at it until the end.
    Yields ``(db, data_dir)``."""
    from db import migrate
    from db.session import Database
    from demo.writer import generate_demo
    from services.datasets.settings import update_settings
    from services.ingest.importer import import_bundle
    from services.ranking.embed import embed_dataset
    from services.ranking.models import DEMO_SETTINGS
    from services.ranking.rank import rank_dataset

    data_dir = root / "data"
    data_dir.mkdir()
    url = f"sqlite:///{root / 'app.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("QRELS_DB_URL", url)
    mp.setenv("QRELS_DATA_DIR", str(data_dir))
    try:
        migrate.upgrade(url)
        db = Database(url)
        generate_demo(root / "demo", n_items=items, n_queries=queries, seed=seed)
        import_bundle(db, root / "demo", "demo", is_demo=True)
        update_settings(db, "demo", dict(DEMO_SETTINGS))
        embed_dataset(db, "demo")
        rank_dataset(db, "demo", k=k)
        yield db, data_dir
    finally:
        mp.undo()


def require_chromium() -> None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it when it can)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(
    db_url: str, data_dir: Path, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start ``python cli.py serve`` on a loopback port and wait until it answers."""
    env = {**os.environ, "QRELS_DB_URL": db_url, "QRELS_DATA_DIR": str(data_dir), **(extra_env or {})}
    log = (data_dir / f"streamlit-{port}.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "cli.py",
            "serve",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.headless=true",
            "--browser.gatherUsageStats=false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_app(proc)
            raise RuntimeError(
                f"streamlit did not start:\n{(data_dir / f'streamlit-{port}.log').read_text()}"
            )
        time.sleep(0.3)


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def app_server(db_url: str, data_dir: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run the app (``python cli.py serve``) on a loopback port; yield its base URL; stop it after."""
    port = free_port()
    proc = start_app(db_url, data_dir, port, extra_env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_app(proc)


@contextmanager
def chromium_page() -> Iterator:
    """A fresh headless Chromium page (Playwright, Debian's browser)."""
    from playwright.sync_api import expect, sync_playwright

    # Generous: the first page that imports torch takes seconds on a loaded 2-core machine.
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def log_in(page, base: str, name: str, password: str, path: str = "") -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/{path}")
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
