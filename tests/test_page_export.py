"""The admin Export page: export with a policy, counts, dropped queries, a zip download, refusals,
and the before/after evaluation table and chart."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.models import Item, Query
from db.session import Database
from services.core.auth import Actor
from services.export.archive import zip_export
from services.ingest.importer import import_bundle
from tests.conftest import make_users
from tests.test_consensus import Votes
from tests.test_evaluation import add_runs
from tests.test_export import apply_cleaning, bundle_with_extras
from ui.session import KEY_USER

# The first evaluation on a fresh virtualenv compiles ranx's numba kernels.
TIMEOUT = 240


@pytest.fixture
def people(sqlite_db: Database, tmp_path: Path, data_dir: Path) -> dict[str, Actor]:
    import_bundle(sqlite_db, bundle_with_extras(tmp_path / "bundle"), "shop")
    people = make_users(sqlite_db)
    with sqlite_db.read() as s:
        items = {ext: i for i, ext in s.execute(select(Item.id, Item.ext_id))}
        queries = {ext: i for i, ext in s.execute(select(Query.id, Query.ext_id))}
    votes = apply_cleaning(Votes(sqlite_db, items, queries), people)
    add_runs(sqlite_db, votes)
    return people


def open_page(user: Actor) -> AppTest:
    at = AppTest.from_file("../pages/export.py", default_timeout=TIMEOUT)
    at.session_state[KEY_USER] = user
    at.session_state["qs_last_seen"] = time.time()
    return at.run()


def shown(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [s.value for s in at.success]
    parts += [c.value for c in at.caption] + [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def test_export_page_exports_and_evaluates(people, data_dir: Path) -> None:
    at = open_page(people["admin"])
    assert not at.exception
    assert at.selectbox(key="export_dataset").value == "shop"
    at.button(key="export_go").click().run()
    assert not at.exception, at.exception
    assert "Exported 2 queries" in shown(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Queries exported": "2",
        "Dropped": "2",
        "Rewritten": "1",
        "Positives added": "1",
        "Positives removed": "1",
    }
    dropped = at.dataframe[0].value
    assert list(dropped["query"]) == ["q3", "q4"]
    assert list(dropped["reason"]) == ["rejected", "too few annotators"]
    folders = list((data_dir / "exports" / "shop").iterdir())
    assert len(folders) == 1 and (folders[0] / "manifest.json").is_file()
    assert len(at.get("download_button")) == 1
    with zipfile.ZipFile(io.BytesIO(zip_export(folders[0]))) as archive:
        assert f"{folders[0].name}/beir/qrels/test.tsv" in archive.namelist()

    at.button(key="export_evaluate").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[1].value
    assert set(table["run"]) == {"bm25", "clip_image", "pooled"}
    bm25 = table[(table["run"] == "bm25") & (table["metric"] == "mrr")].iloc[0]
    assert bm25["cleaned"] > bm25["original"]
    assert len(at.get("vega_lite_chart")) == 1
    missed = at.dataframe[2].value
    assert list(missed["queries with a missed positive in the top 10"]) == [1, 1, 1]
    assert "cleaned labels: 2 queries" in shown(at)


def test_export_page_reports_bad_options_and_changes_policy(people, data_dir: Path) -> None:
    at = open_page(people["admin"])
    at.multiselect(key="export_stratify").select("category")
    at.button(key="export_go").click().run()
    assert "Nothing was exported. stratifying needs a sample size" in shown(at)
    assert not (data_dir / "exports").exists()

    at.number_input(key="export_min_annotators").set_value(1)
    at.number_input(key="export_size").set_value(2)
    at.multiselect(key="export_formats").unselect("native").unselect("mbeir").unselect("parquet")
    at.button(key="export_go").click().run()
    assert not at.exception
    assert "Exported 2 queries" in shown(at)
    assert "1 kept queries were not drawn in the sample" in shown(at)


@pytest.mark.parametrize("who", ["ann1", "reviewer"])
def test_export_page_is_for_admins(people, who: str) -> None:
    at = open_page(people[who])
    assert "You do not have access to this page." in shown(at)
    assert len(at.button) == 1  # the account box's log-out only
