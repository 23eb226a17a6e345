"""Cached figures (dashboard, agreement, gold, review queue) are kept while nothing changes and show
new work at the next call after it is stored.

The caches are keyed on a work stamp read from the database, never on anything this process was
told, so the submits below (made through the services, as another app process would make them)
reach the cached figures only through the database: what one process stores, another shows.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from db.models import Query
from db.session import Database
from services.agreement import report
from services.agreement.dashboard import dashboard
from services.core import auth
from services.core.auth import Actor
from services.core.memo import StampedCache
from services.core.work_stamp import work_stamp
from services.datasets.assignment import assign
from services.datasets.catalog import delete_dataset
from services.datasets.settings import update_settings
from services.gold.answers import set_gold
from services.gold.dashboard import gold_dashboard
from services.ingest.importer import import_bundle
from services.review import disputes as review
from services.review.adjudication import adjudicate
from tests.bundles import make_bundle
from tests.conftest import PASSWORD
from tests.test_page_dashboard import open_page
from tests.test_review import disputed, submit  # noqa: F401 - the fixture


def third_annotator(db: Database) -> Actor:
    info = auth.add_user(db, "ann3", "annotator", PASSWORD)
    assign(db, "shop", overlap=3)
    return Actor(info.id, info.name, info.role)


def test_figures_are_kept_until_new_work_then_recomputed(db: Database, disputed) -> None:  # noqa: F811
    admin, reviewer = disputed["admin"], disputed["reviewer"]
    agreement = report.agreement_report(db, admin, "shop")
    figures = dashboard(db, admin, "shop")
    gold = gold_dashboard(db, "shop", actor=admin)
    queue = review.review_queue(db, reviewer, "shop")
    # Refreshes with no new work: the very same objects, nothing recomputed.
    assert report.agreement_report(db, admin, "shop") is agreement
    assert dashboard(db, admin, "shop").positives is figures.positives
    assert gold_dashboard(db, "shop", actor=admin) is gold
    assert review.review_queue(db, reviewer, "shop") == queue

    ann3 = third_annotator(db)
    submit(db, ann3, "q4", positives=["relevant", "not_relevant"])  # q4 was agreed on; now it is not
    after = report.agreement_report(db, admin, "shop")
    assert after is not agreement
    assert ("ann1", "ann3") in {(r.annotator_a, r.annotator_b) for r in after.sets}
    assert sum(r["submissions"] for r in dashboard(db, admin, "shop").throughput) == 13
    assert "ann3" in {r["annotator"] for r in gold_dashboard(db, "shop", actor=admin).rows}
    assert "q4" in {e.ext_id for e in review.review_queue(db, reviewer, "shop")}
    assert len(report.agreement_over_time(db, admin, "shop")) > 0


def test_a_review_decision_shows_at_once_in_the_queue(db: Database, disputed) -> None:  # noqa: F811
    reviewer = disputed["reviewer"]
    entry = review.review_queue(db, reviewer, "shop")[0]
    assert not entry.resolved
    adjudicate(db, reviewer, entry.query_id, items={}, verdict="accept")
    assert review.review_queue(db, reviewer, "shop")[0].resolved
    assert review.review_progress(db, reviewer, "shop") == review.ReviewProgress(5, 1)


def test_the_dashboard_page_shows_a_submit_made_after_it_was_drawn(db: Database, disputed) -> None:  # noqa: F811
    at = open_page(disputed["admin"])
    pairs = set(next(t.value for t in at.dataframe if "statistic" in t.value.columns)["annotators"])
    assert "ann1 / ann3" not in pairs
    ann3 = third_annotator(db)
    submit(db, ann3, "q2", positives=["relevant", "relevant"])
    at.run()  # the next refresh
    assert not at.exception
    pairs = set(next(t.value for t in at.dataframe if "statistic" in t.value.columns)["annotators"])
    assert {"ann1 / ann3", "ann2 / ann3"} <= pairs


def test_the_stamp_moves_with_every_kind_of_change(db: Database, disputed, tmp_path) -> None:  # noqa: F811
    def stamp():
        with db.read() as s:
            ds_id = s.scalar(select(Query.dataset_id).limit(1))
            return work_stamp(s, ds_id)

    seen = [stamp()]
    assert stamp() == seen[0]
    ann3 = third_annotator(db)
    submit(db, ann3, "q1", positives=["relevant", "relevant"])
    seen.append(stamp())
    with db.read() as s:
        q1 = s.scalar(select(Query.id).where(Query.ext_id == "q1"))
    adjudicate(db, disputed["reviewer"], q1, items={}, verdict="accept")
    seen.append(stamp())
    set_gold(db, q1, verdict="accept", labels={}, actor=disputed["admin"])
    seen.append(stamp())
    update_settings(db, "shop", {"gold_rate": 7})
    seen.append(stamp())
    assert len(set(seen)) == len(seen)
    # A delete and a re-import under the same name: another dataset row, another stamp.
    delete_dataset(db, "shop")
    with db.read() as s:
        assert work_stamp(s, seen[-1].dataset[0]) is None
    import_bundle(db, make_bundle(tmp_path / "again", n_items=10, n_queries=6), "shop")
    assert stamp() not in seen


def test_one_computation_per_stamp_however_many_ask_at_once() -> None:
    import threading

    cache = StampedCache(max_slots=2)
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return len(calls)

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("slot", 1, slow))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1] * 5 and len(calls) == 1
    assert cache.get("slot", 2, slow) == 2  # a new stamp recomputes
    cache.get("b", 1, lambda: 0)
    cache.get("c", 1, lambda: 0)  # bounded: "slot" was least recently used and is gone
    assert cache.get("slot", 2, slow) == 3
