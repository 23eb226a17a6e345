"""Several app processes, one PostgreSQL database, nginx in front (deploy/nginx/qrels.conf), Chromium
through it: two annotators on two processes, each submit stored once, no query in two queues, a
login that follows the browser to the other process, a logout that holds on every process, a
ranking job started on one process shown on the other's Ranking page, and a process that stops
while its browsers go on on the other."""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Assignment, Draft, Job, Judgment, Submission, User
from db.session import Database, dispose_engine
from demo.writer import generate_demo
from models.embedder import DEMO_CHECKPOINT
from services.datasets.assignment import assign
from services.datasets.settings import update_settings
from services.ingest.importer import import_bundle
from services.ranking.embed import embed_dataset
from services.ranking.models import DEMO_SETTINGS
from services.ranking.rank import rank_dataset
from tests.browser import CHROMIUM, CHROMIUM_ARGS, free_port, require_chromium, start_app, stop_app
from tests.conftest import PASSWORD, _drop_postgres, _fresh_postgres_url, make_users
from tests.proxy import ROUTE_COOKIE, UPSTREAM_HEADER, nginx_proxy, require_nginx, routes_to

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not DEMO_CHECKPOINT.is_file(), reason="the demo CLIP checkpoint is not built"),
]
WAIT = 60_000
QUERIES = 8  # overlap 1 over two annotators: four each


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A ranked demo in a fresh PostgreSQL database, two ``cli.py serve`` processes, nginx."""
    require_chromium()
    require_nginx()
    if not os.environ.get("QRELS_TEST_PG_URL"):
        pytest.skip("several app processes need PostgreSQL: set QRELS_TEST_PG_URL (.ci/run starts one)")
    from db import migrate

    root = tmp_path_factory.mktemp("proxy")
    data_dir = root / "data"
    data_dir.mkdir()
    url = _fresh_postgres_url()
    mp = pytest.MonkeyPatch()
    mp.setenv("QRELS_DB_URL", url)
    mp.setenv("QRELS_DATA_DIR", str(data_dir))
    procs = []
    try:
        migrate.upgrade(url)
        db = Database(url)
        generate_demo(root / "demo", n_items=60, n_queries=QUERIES, seed=11)
        import_bundle(db, root / "demo", "demo", is_demo=True)
        update_settings(db, "demo", {**DEMO_SETTINGS, "k": 20})
        embed_dataset(db, "demo")
        rank_dataset(db, "demo", k=20)
        people = make_users(db)
        assign(db, "demo", overlap=1, annotators=["ann1", "ann2"])
        ports = [free_port(), free_port()]
        started: dict[int, object] = {}

        def start(port: int) -> None:
            try:
                started[port] = start_app(url, data_dir, port)
            except Exception as e:  # reported below, in the test's thread
                started[port] = e

        threads = [threading.Thread(target=start, args=(p,)) for p in ports]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        procs = [p for p in started.values() if not isinstance(p, Exception)]
        for outcome in started.values():
            if isinstance(outcome, Exception):
                raise outcome
        apps = [f"127.0.0.1:{p}" for p in ports]
        with nginx_proxy(root / "nginx", free_port(), apps) as base:
            yield {
                "db": db,
                "base": base,
                "a": apps[0],
                "b": apps[1],
                "pid": {apps[0]: started[ports[0]].pid, apps[1]: started[ports[1]].pid},
                "procs": {"a": started[ports[0]], "b": started[ports[1]]},
                "routes": dict(zip("ab", routes_to(base, apps).values(), strict=True)),
                "people": people,
                "data_dir": data_dir,
            }
    finally:
        for proc in procs:
            stop_app(proc)
        mp.undo()
        dispose_engine(url)
        _drop_postgres(url)


@pytest.fixture
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """A browser (its own cookies) pinned by its route cookie to one app process; records who served it."""

    def __init__(self, browser, cluster: dict, process: str) -> None:
        self.base = cluster["base"]
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT)
        self.served: list[tuple[str, str | None, int]] = []  # (path, upstream, status)
        self.documents: list[str | None] = []  # the upstream of each page load
        self.page.on("response", self._record)
        self.pin(cluster, process)

    def _record(self, response) -> None:
        path = response.url.removeprefix(self.base).split("?")[0]
        upstream = response.headers.get(UPSTREAM_HEADER.lower())
        self.served.append((path, upstream, response.status))
        if response.request.resource_type == "document":
            self.documents.append(upstream)

    def pin(self, cluster: dict, process: str) -> None:
        self.context.add_cookies(
            [{"name": ROUTE_COOKIE, "value": cluster["routes"][process], "url": self.base}]
        )

    def document_from(self) -> str | None:
        """The process that served the last page load (nginx lists every upstream it tried, the
        one that answered last: "A, B" when A was down)."""
        return self.documents[-1].split(", ")[-1] if self.documents and self.documents[-1] else None

    def log_in(self, name: str, path: str) -> None:
        from playwright.sync_api import expect

        self.page.goto(f"{self.base}/{path}")
        self.page.get_by_label("User name", exact=True).fill(name)
        self.page.get_by_label("Password", exact=True).fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.get_by_text(f"Signed in as {name}")).to_be_visible()
        # The page then asks the browser to claim its session cookie (a POST of its own): a login
        # follows the browser to another process only once the cookie is set.
        deadline = time.monotonic() + WAIT / 1000
        while not any(c["name"] == "qs_session" for c in self.context.cookies()):
            assert time.monotonic() < deadline, "the session cookie was never set"
            time.sleep(0.1)

    def session_cookie(self) -> str:
        return next(c["value"] for c in self.context.cookies() if c["name"] == "qs_session")


def shown_query(page) -> str:
    page.wait_for_selector(".wb[data-shown]", timeout=WAIT)
    return page.locator(".wb").get_attribute("data-query-id")


def submit_as_is(page, shots: Path) -> str:
    """Every positive relevant, submit; wait for the next query or the end of the queue."""
    q = shown_query(page)
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    try:
        page.wait_for_selector(f".wb[data-shown]:not([data-query-id='{q}']), .wb.is-empty", timeout=WAIT)
    except Exception:
        page.screenshot(path=str(shots / f"stuck-{q}.png"))
        said = page.locator(".msg").inner_text()
        raise AssertionError(f"query {q} did not move on; the page says {said!r}") from None
    return q


def images_loaded(page) -> bool:
    loaded = "els => els.length > 0 && els.every(i => i.complete && i.naturalWidth > 0)"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if page.locator(".card.pos img").evaluate_all(loaded):
            return True
        time.sleep(0.2)
    return False


def thumbnail(cluster: dict, process: str, cookie: str, path: str) -> int:
    """The status of one thumbnail asked of ``process`` with a session cookie."""
    request = urllib.request.Request(f"{cluster['base']}{path}")
    request.add_header("Cookie", f"{ROUTE_COOKIE}={cluster['routes'][process]}; qs_session={cookie}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.headers[UPSTREAM_HEADER] == cluster[process]
            return r.status
    except urllib.error.HTTPError as e:
        assert e.headers[UPSTREAM_HEADER] == cluster[process]
        return e.code


def wait_for_draft(db: Database, assignment_id: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the page sends its draft about a second after a change
        with db.read() as s:
            if s.scalar(select(Draft.id).where(Draft.assignment_id == assignment_id)) is not None:
                return
        time.sleep(0.2)
    raise AssertionError("the draft never reached the database")


def test_two_annotators_on_two_processes(cluster: dict, browser) -> None:
    """ann1 works on process A, ann2 on B; ann1's browser then moves to B mid-query (a reload: the
    login and the unsaved mark follow it); ann2 logs out on B and its cookie fails on A too."""
    db = cluster["db"]
    one, two = Tab(browser, cluster, "a"), Tab(browser, cluster, "b")
    one.log_in("ann1", "workbench")
    two.log_in("ann2", "workbench")
    assert one.document_from() == cluster["a"] and two.document_from() == cluster["b"]

    # Thumbnails come through the proxy from each browser's own process.
    for tab, process in ((one, "a"), (two, "b")):
        shown_query(tab.page)
        assert images_loaded(tab.page), f"thumbnails did not load through the proxy from {process}"
        media = [(up, status) for path, up, status in tab.served if path.startswith("/qs/media/")]
        assert media and {up for up, _ in media} == {cluster[process]}
        assert 200 in {status for _, status in media}

    # Turn and turn about, three submits each, each browser on its own process.
    done = {"ann1": [], "ann2": []}
    for _ in range(3):
        done["ann1"].append(submit_as_is(one.page, cluster["data_dir"]))
        done["ann2"].append(submit_as_is(two.page, cluster["data_dir"]))

    # ann1 marks the fourth query's first positive wrong; the draft reaches the database...
    fourth = shown_query(one.page)
    one.page.keyboard.press("n")
    wait_for_draft(db, int(fourth))
    # ... and the browser is sent to process B (as when A stops): a reload lands there, logged in
    # by its cookie, on the same query, with the mark.
    one.pin(cluster, "b")
    one.page.reload()
    one.page.wait_for_selector(f".wb[data-shown][data-query-id='{fourth}']", timeout=WAIT)
    assert one.document_from() == cluster["b"]
    assert one.page.get_by_label("Password", exact=True).count() == 0
    assert one.page.locator(".card.pos").first.get_attribute("data-label") == "not_relevant"
    one.page.keyboard.press("a")  # any other positive relevant, the first stays not relevant
    one.page.keyboard.press("Enter")
    one.page.wait_for_selector(".wb.is-empty", timeout=WAIT)
    done["ann1"].append(fourth)

    # ann2 logs out on B: the cookie it had is refused by A as well (the revocation is in the database).
    old_cookie = two.session_cookie()
    some_thumb = next(
        path for path, _, status in two.served if path.startswith("/qs/media/t/") and status == 200
    )
    assert thumbnail(cluster, "a", old_cookie, some_thumb) == 200
    two.page.get_by_role("button", name="Log out").click()
    two.page.get_by_label("Password", exact=True).wait_for()
    for process in ("b", "a"):  # each process checks the cookies it remembers every second
        deadline = time.monotonic() + 10
        while thumbnail(cluster, process, old_cookie, some_thumb) != 401:
            assert time.monotonic() < deadline, f"process {process} still serves a logged-out cookie"
            time.sleep(0.2)
    one.context.close()
    two.context.close()

    with db.read() as s:
        ids = {u.name: u.id for u in s.scalars(select(User))}
        subs = s.execute(select(Submission.user_id, Submission.assignment_id, Submission.client_token)).all()
        owners = dict(s.execute(select(Assignment.id, Assignment.user_id)).all())
        per_query = Counter(q for (q,) in s.execute(select(Assignment.query_id)))
        queues = {
            name: set(s.scalars(select(Assignment.query_id).where(Assignment.user_id == ids[name])))
            for name in ("ann1", "ann2")
        }
        drafts = s.scalar(select(func.count()).select_from(Draft))
        moved = s.scalar(select(Submission.id).where(Submission.assignment_id == int(fourth)))
        wrong = s.scalars(select(Judgment.query_id).where(Judgment.label == "not_relevant")).all()
        fourth_query = s.get(Assignment, int(fourth)).query_id
    # Each submit stored exactly once, by the annotator whose assignment it is.
    assert Counter(uid for uid, _, _ in subs) == {ids["ann1"]: 4, ids["ann2"]: 3}
    assert len({aid for _, aid, _ in subs}) == len(subs) == len({tok for _, _, tok in subs})
    assert all(owners[aid] == uid for uid, aid, _ in subs)
    # Every query in exactly one queue (overlap 1), none in both.
    assert len(per_query) == QUERIES and set(per_query.values()) == {1}
    assert not queues["ann1"] & queues["ann2"]
    assert moved is not None and drafts == 0  # the submit on B discarded the draft A had saved
    assert wrong == [fourth_query]  # the mark made on A, stored by B
    assert len(set(done["ann1"])) == 4 and len(set(done["ann2"])) == 3


def test_a_ranking_job_started_on_one_process_shows_on_the_other(cluster: dict, browser) -> None:
    from playwright.sync_api import expect

    db = cluster["db"]
    watcher, starter = Tab(browser, cluster, "b"), Tab(browser, cluster, "a")
    earlier = _latest_job(db)  # the fixture's own ranking is a job too
    assert earlier is not None
    watcher.log_in("admin", "ranking")
    expect(watcher.page.get_by_text(f"Job {earlier.id} · done")).to_be_visible()
    starter.log_in("admin", "ranking")
    expect(starter.page.get_by_text(f"Job {earlier.id} · done")).to_be_visible()
    assert watcher.document_from() == cluster["b"] and starter.document_from() == cluster["a"]
    starter.page.get_by_role("button", name="Embed and rank").click()

    deadline = time.monotonic() + WAIT / 1000
    while (job := _latest_job(db)) is None or job.id == earlier.id:
        assert time.monotonic() < deadline, "no job row"
        time.sleep(0.2)
    assert job.params["pid"] == cluster["pid"][cluster["a"]]  # it runs in process A
    # B's page (its fragment polls the database every second) shows the job, then its outcome.
    expect(watcher.page.get_by_text(f"Job {job.id} ·")).to_be_visible()
    expect(watcher.page.get_by_text(f"Job {job.id} · done")).to_be_visible(timeout=180_000)
    # The page job embeds first (nothing new here) and then ranks; its message says both.
    expect(watcher.page.get_by_text(re.compile(rf"^embedded .*ranked {QUERIES} queries"))).to_be_visible()
    watcher.context.close()
    starter.context.close()


def _latest_job(db: Database) -> Job | None:
    with db.read() as s:
        return s.scalar(select(Job).order_by(Job.id.desc()).limit(1))


def test_when_a_process_stops_its_browsers_go_on_on_another(cluster: dict, browser) -> None:
    """Last in the module: it stops process A. A browser on A, reloaded, is served by B, logged in."""
    from playwright.sync_api import expect

    tab = Tab(browser, cluster, "a")
    tab.log_in("admin", "ranking")
    assert tab.document_from() == cluster["a"]
    stop_app(cluster["procs"]["a"])
    tab.page.reload()
    expect(tab.page.get_by_text("Signed in as admin")).to_be_visible()
    expect(tab.page.get_by_role("heading", name="Ranking")).to_be_visible()
    assert tab.document_from() == cluster["b"]
    assert tab.page.get_by_label("Password", exact=True).count() == 0
    tab.context.close()
