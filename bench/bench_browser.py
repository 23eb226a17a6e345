"""The workbench as an annotator feels it, in Debian's Chromium: keystrokes per query and what they wait for.

Builds (or reuses) a ranked demo of ``--items`` items and ``--queries`` queries, starts the app
(``python cli.py serve``), logs in as an annotator and works ``--judge`` queries from the keyboard
alone, alternating two kinds: a query needing no change (``a`` then ``Enter``) and one with a
missed positive on the first screen (``a``, ``Tab``, ``3``, ``Space``, ``Enter``), looking at each
query for ``--look`` seconds first (a person reads the query before judging it; the page uses that
time to fetch the next query's images). Timed in the page with ``performance.now()``:

- key → visible feedback: from the keydown (the event's timestamp, taken by a capturing listener
  on ``window`` that runs before the workbench's own) to the first animation frame after the
  component changed what is on screen (a label, a toggle, the focus); beside it Chromium's own
  Event Timing (keydown → next frame painted);
- submit → next query fully shown: from the ``Enter`` to the first frame after the next query's
  text, positives and first ten candidates' images are on screen (``data-shown``).

Medians, 95th percentiles and maxima go to bench/RESULTS.md with the machine and its load.

    python bench/bench_browser.py --items 2000 --queries 200
    python bench/bench_browser.py --items 100000 --queries 10000 --workdir bench/_work/demo-100k
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_md import append_row  # noqa: E402

PASSWORD = "bench password 1"
ANNOTATOR = "bench-annotator"
# In-page timing: keydown → the first frame after the workbench's DOM changed.
PROBE = """
() => {
  const host = [...document.querySelectorAll('*')].find((e) => e.shadowRoot && e.shadowRoot.querySelector('.wb'));
  const wb = host.shadowRoot.querySelector('.wb');
  window.__feedback = []; window.__shown = []; window.__keys = 0; window.__paint = []; window.__keylog = [];
  let pending = null, enter = null;
  // On window, capturing: it runs before the workbench's own listener (on document), so the
  // mutations that listener makes are seen after `pending` is set. The time is the event's own
  // timestamp (when the key went down), so a busy page's input delay counts too.
  window.addEventListener('keydown', (e) => {
    window.__keys += 1;
    window.__keylog.push([e.key, e.timeStamp]);
    if (e.key === 'Enter') enter = e.timeStamp; else pending = e.timeStamp;
  }, true);
  new MutationObserver((changes) => {
    for (const c of changes) {
      if (c.attributeName === 'data-shown' && wb.dataset.shown && enter !== null) {
        const t0 = enter; enter = null;
        requestAnimationFrame(() => window.__shown.push(performance.now() - t0));
      } else if (pending !== null && c.attributeName !== 'data-shown') {
        const t0 = pending; pending = null;
        requestAnimationFrame(() => window.__feedback.push(performance.now() - t0));
      }
    }
  }).observe(wb, { subtree: true, attributes: true, attributeFilter: ['aria-pressed', 'aria-current', 'class', 'data-label', 'data-shown'] });
  // The browser's own measure (Event Timing): keydown to the next frame painted, 8 ms steps.
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.name === 'keydown') window.__paint.push([e.startTime, e.duration]);
  }).observe({ type: 'event', durationThreshold: 16 });
}
"""


def build(workdir: Path, items: int, queries: int) -> tuple[str, Path]:
    """A ranked demo with one annotator who has every query (reused when already built)."""
    url = f"sqlite:///{workdir / 'app.db'}"
    data_dir = workdir / "data"
    if (workdir / "ready").exists():
        return url, data_dir
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(exist_ok=True)
    os.environ["QRELS_DB_URL"], os.environ["QRELS_DATA_DIR"] = url, str(data_dir)
    from db import migrate
    from db.session import Database
    from demo.writer import generate_demo
    from services.core import auth
    from services.datasets.assignment import assign
    from services.datasets.settings import update_settings
    from services.ingest.importer import import_bundle
    from services.ranking.embed import embed_dataset
    from services.ranking.models import DEMO_SETTINGS
    from services.ranking.rank import rank_dataset

    migrate.upgrade(url)
    db = Database(url)
    started = time.perf_counter()
    generate_demo(workdir / "bundle", n_items=items, n_queries=queries, seed=0, overwrite=True)
    import_bundle(db, workdir / "bundle", "demo", is_demo=True)
    update_settings(db, "demo", {**DEMO_SETTINGS, "k": 50})
    embed_dataset(db, "demo")
    rank_dataset(db, "demo", k=50)
    auth.add_user(db, ANNOTATOR, "annotator", PASSWORD)
    assign(db, "demo", overlap=1, annotators=[ANNOTATOR])
    (workdir / "ready").write_text(f"built in {time.perf_counter() - started:.0f} s\n")
    return url, data_dir


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):.0f} ms, p95 {percentile(values, 0.95):.0f} ms, "
        f"max {max(values):.0f} ms (n={len(values)})"
    )


def event_timing(paint: list[list[float]], keylog: list[list], enter: bool) -> str:
    """Chromium's Event Timing of the keydowns (``enter``: the Enter keys, else the others): the
    time from the key going down to the next frame painted, in 8 ms steps. Chromium reports only
    keydowns of 16 ms or more; the others took less and count as 8 ms."""
    reported = {round(start, 1): duration for start, duration in paint}
    values = []
    for key, stamp in keylog:
        if (key == "Enter") == enter:
            values.append(reported.get(round(stamp, 1), 8.0))
    if not values:
        return "no keydowns"
    return (
        f"p50 {statistics.median(values):.0f} ms, p95 {percentile(values, 0.95):.0f} ms, max {max(values):.0f} ms "
        f"(n={len(values)}; under 16 ms counted as 8)"
    )


def drive(base: str, judge: int, look: float) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{base}/workbench")
        page.get_by_label("User name", exact=True).fill(ANNOTATOR)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_selector(".wb[data-shown], .wb.is-empty")
        if page.locator(".wb.is-empty").count():
            raise SystemExit(
                "the bench annotator's queue is done: remove the --workdir folder to build it again"
            )
        page.wait_for_timeout(1500)  # let the first screen settle before timing anything
        page.evaluate(PROBE)
        actions: dict[str, list[int]] = {"no change": [], "one missed positive": []}
        visible_at_start = page.evaluate(
            "() => { const r = (e) => e.getBoundingClientRect(); const host = [...document.querySelectorAll('*')]"
            ".find((e) => e.shadowRoot && e.shadowRoot.querySelector('.wb')); const s = host.shadowRoot;"
            " const cands = [...s.querySelectorAll('.grid.cand .card')].filter((c) => r(c).bottom <= innerHeight);"
            " return {candidates: cands.length, positives: [...s.querySelectorAll('.card.pos')].filter((c) => r(c).bottom <= innerHeight).length}; }"
        )
        for n in range(judge):
            query = page.locator(".wb").get_attribute("data-query-id")
            before = page.evaluate("window.__keys")
            kind = "no change" if n % 2 == 0 else "one missed positive"
            presses = ["a", "Enter"] if kind == "no change" else ["a", "Tab", "3", " ", "Enter"]
            page.wait_for_timeout(int(look * 1000))
            for key in presses:
                page.keyboard.press(key)
                if key != "Enter":
                    page.wait_for_timeout(60)  # a person's pace; the timing itself is in the page
            page.wait_for_selector(f".wb[data-shown]:not([data-query-id='{query}'])")
            actions[kind].append(page.evaluate("window.__keys") - before)
            page.wait_for_timeout(150)
        marks = page.evaluate("window.__qsMarks || []")
        stages: dict[str, list[float]] = {"data": [], "rendered": [], "shown": []}
        started = None
        for name, at, _aid in marks:
            if name == "submit":
                started = at
            elif started is not None and name in stages:
                stages[name].append(at - started)
        result = {
            "stages": stages,
            "feedback": page.evaluate("window.__feedback"),
            "paint": page.evaluate("window.__paint"),
            "keylog": page.evaluate("window.__keylog"),
            "shown": page.evaluate("window.__shown"),
            "actions": actions,
            "first_screen": visible_at_start,
        }
        browser.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--judge", type=int, default=30, help="queries to work through")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--look", type=float, default=1.0, help="seconds spent reading each query first")
    parser.add_argument("--no-append", action="store_true", help="print figures only")
    args = parser.parse_args()
    workdir = args.workdir or ROOT / "bench" / "_work" / f"browser-{args.items}"
    url, data_dir = build(workdir, args.items, args.queries)

    from tests.browser import free_port, start_app, stop_app

    port = free_port()
    proc = start_app(url, data_dir, port)
    try:
        result = drive(f"http://127.0.0.1:{port}", args.judge, args.look)
    finally:
        stop_app(proc)
    size = f"{args.items:,} items, {args.queries:,} queries"
    command = (
        f"python bench/bench_browser.py --items {args.items} --queries {args.queries} --judge {args.judge}"
    )
    counts = {kind: sorted(set(v)) for kind, v in result["actions"].items()}
    rows = [
        (
            f"workbench keystrokes per query, Chromium ({size})",
            f"no change: {counts['no change']}; one missed positive on the first screen: {counts['one missed positive']}"
            f" (first screen at 1440x900: {result['first_screen']['positives']} positive(s), "
            f"{result['first_screen']['candidates']} candidates)",
        ),
        (f"workbench key → visible feedback, Chromium ({size})", describe(result["feedback"])),
        (
            f"workbench key → next frame painted, Chromium's Event Timing, keys other than Enter ({size})",
            event_timing(result["paint"], result["keylog"], enter=False),
        ),
        (
            f"workbench Enter → next frame painted ('Saving…'), Chromium's Event Timing ({size})",
            event_timing(result["paint"], result["keylog"], enter=True),
        ),
        (f"workbench submit → next query fully shown, Chromium ({size})", describe(result["shown"])),
    ]
    for figure, value in rows:
        print(f"{figure}: {value}")
        if not args.no_append:
            append_row(figure, value, command, "cpu")


if __name__ == "__main__":
    main()
