"""Where the stored triage shows: review (filter, columns), the workbench hint (only to whom it may
be shown), the dashboard (share per modality shortcut), the export (a column, a manifest count, a
policy that drops single-modality queries)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.models import Assignment, Dataset, Query
from db.session import Database
from db.triage import QueryTriage
from services.annotation.task import load_task
from services.cleaning.policy import Policy
from services.core.auth import Actor
from services.core.errors import ValidationError
from services.datasets.settings import DatasetSettings, update_settings
from services.export.export import export_dataset
from services.export.options import ExportOptions
from services.review import disputes as review
from services.triage.views import hint_for, triage_overview
from tests.test_export import cleaned, shop  # noqa: F401 - the fixtures
from tests.test_review import disputed  # noqa: F401 - the fixture
from ui.components.workbench import view
from ui.session import KEY_USER


def store_triage(db: Database, flags: dict[str, tuple[float, str]], *, rank: int = 1) -> None:
    """Triage rows as the ranking job stores them: query ext id -> (suspicion, shortcut)."""
    with db.write() as s:
        ids = dict(s.execute(select(Query.ext_id, Query.id)).all())
        for ext, (suspicion, shortcut) in flags.items():
            s.add(
                QueryTriage(
                    query_id=ids[ext],
                    suspicion=suspicion,
                    signals={
                        "false_negative": suspicion,
                        "wrong_positive": 0.0,
                        "bad_query": 0.0,
                        "disagreement": 0.0,
                    },
                    shortcut=shortcut,
                    shortcut_rank=rank,
                )
            )


def open_page(path: str, user: Actor) -> AppTest:
    at = AppTest.from_file(f"../pages/{path}", default_timeout=60)
    at.session_state[KEY_USER] = user
    at.session_state["qs_last_seen"] = time.time()
    return at.run()


# ------------------------------------------------------------------------------ review


def test_review_filters_by_modality_shortcut_and_shows_the_suspicion(db: Database, disputed) -> None:  # noqa: F811
    store_triage(db, {"q1": (0.81, "image"), "q2": (0.2, "neither"), "q3": (0.4, "text")})
    reviewer = disputed["reviewer"]
    entries = {e.ext_id: e for e in review.review_queue(db, reviewer, "shop")}
    assert (entries["q1"].suspicion, entries["q1"].shortcut) == (0.81, "image")
    assert entries["q5"].suspicion is None and entries["q5"].shortcut is None  # not triaged
    assert [e.ext_id for e in review.review_queue(db, reviewer, "shop", shortcut="image")] == ["q1"]
    assert [e.ext_id for e in review.review_queue(db, reviewer, "shop", shortcut="neither")] == ["q2"]
    with pytest.raises(ValidationError, match="unknown modality shortcut"):
        review.review_queue(db, reviewer, "shop", shortcut="smell")

    at = open_page("review.py", reviewer)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns)[-2:] == ["suspicion", "one modality"]
    assert dict(zip(table["query"], table["one modality"], strict=True))["q1"] == "image alone solves it"
    assert dict(zip(table["query"], table["suspicion"], strict=True))["q5"] == "—"
    at.selectbox(key="rv_shortcut").set_value("text").run()
    assert list(at.dataframe[0].value["query"]) == ["q3"]


# ------------------------------------------------------------------------------ workbench hint


def test_the_hint_reaches_annotators_only_when_the_dataset_shows_hints(db: Database, disputed) -> None:  # noqa: F811
    store_triage(db, {"q1": (0.81, "image")})
    ann = disputed["ann1"]
    with db.read() as s:
        aid, qid = s.execute(
            select(Assignment.id, Query.id)
            .join(Query)
            .where(Assignment.user_id == ann.id, Query.ext_id == "q1")
        ).one()
    task = load_task(db, ann, aid)
    assert task.hint is None and "hint" not in view.task_data(task, version="1")
    with db.read() as s:
        shown = DatasetSettings()
        assert hint_for(s, disputed["reviewer"], qid, shown) == 0.81  # reviewers and admins always see it
        assert hint_for(s, disputed["admin"], qid, shown) == 0.81
        assert hint_for(s, ann, qid, shown) is None
    update_settings(db, "shop", {"show_hints": True})
    task = load_task(db, ann, aid)
    assert task.hint == 0.81 and view.task_data(task, version="2")["hint"] == 0.81


# ------------------------------------------------------------------------------ dashboard


def test_dashboard_shows_the_share_per_modality_shortcut(db: Database, disputed) -> None:  # noqa: F811
    admin = disputed["admin"]
    assert triage_overview(db, "shop", actor=admin).share_rows() == []
    store_triage(
        db, {"q1": (0.9, "image"), "q2": (0.1, "neither"), "q3": (0.5, "neither"), "q4": (0.3, "text")}
    )
    overview = triage_overview(db, "shop", actor=admin)
    assert overview.n_triaged == 4 and overview.n_queries == 6 and overview.shortcut_rank == 1
    assert overview.shortcuts == {"text": 1, "image": 1, "both": 0, "neither": 2}
    assert [r["query"] for r in overview.most_suspicious] == ["q1", "q3", "q4", "q2"]
    assert {r["shortcut"]: r["share"] for r in overview.share_rows()}["neither"] == 0.5

    at = open_page("dashboard.py", admin)
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    shares = [s for s in specs if s.get("encoding", {}).get("x", {}).get("field") == "share"]
    assert len(shares) == 1 and shares[0]["encoding"]["y"]["axis"]["labelLimit"] == 0
    assert any("4 of 6 queries triaged" in c.value for c in at.caption)
    assert any("suspicion" in t.value.columns for t in at.dataframe)


# ------------------------------------------------------------------------------ export


def test_export_writes_the_shortcut_column_and_counts_it(db: Database, cleaned, tmp_path: Path) -> None:  # noqa: F811
    store_triage(db, {"q1": (0.7, "text"), "q2": (0.1, "neither")}, rank=2)
    report = export_dataset(db, "shop", tmp_path / "out", ExportOptions(formats=("csv", "parquet")))
    queries = pd.read_csv(tmp_path / "out" / "tables" / "queries.csv")
    assert dict(zip(queries["query_id"], queries["modality_shortcut"], strict=True)) == {
        "q1": "text",
        "q2": "neither",
    }
    assert pd.read_parquet(tmp_path / "out" / "tables" / "queries.parquet")["modality_shortcut"].tolist() == [
        "text",
        "neither",
    ]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["modality_shortcuts"] == {
        "r": 2,
        "text": 1,
        "image": 0,
        "both": 0,
        "neither": 1,
        "not_triaged": 0,
    }
    assert report.counts["modality_shortcuts"]["text"] == 1
    assert "shortcuts" not in manifest["policy"]  # the default keeps them, and says nothing


def test_the_policy_can_drop_single_modality_queries(db: Database, cleaned, tmp_path: Path) -> None:  # noqa: F811
    store_triage(db, {"q1": (0.7, "text"), "q2": (0.1, "neither")})
    policy = Policy.parse("shortcuts=drop")
    assert (policy.shortcuts, str(policy)) == (
        "drop",
        "min=2,query=unanimous,positive=majority,shortcuts=drop",
    )
    with pytest.raises(ValidationError, match="choose keep or drop"):
        Policy.parse("shortcuts=maybe")
    report = export_dataset(db, "shop", tmp_path / "out", ExportOptions(formats=("csv",), policy=policy))
    assert report.counts["queries"]["exported"] == 1
    assert report.counts["queries"]["dropped"]["single_modality"] == 1
    dropped = {d.query_id: d for d in report.dropped}
    assert dropped["q1"].reason == "single_modality" and "text alone" in dropped["q1"].detail
    changes = list(csv.DictReader((tmp_path / "out" / "changes.csv").open(encoding="utf-8")))
    assert any(r["query_id"] == "q1" and r["reason"] == "single_modality" for r in changes)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (
        manifest["policy"]["shortcuts"] == "drop" and manifest["counts"]["modality_shortcuts"]["neither"] == 1
    )


def test_a_dataset_never_triaged_exports_an_empty_column(db: Database, cleaned, tmp_path: Path) -> None:  # noqa: F811
    export_dataset(
        db, "shop", tmp_path / "out", ExportOptions(formats=("csv",), policy=Policy.parse("shortcuts=drop"))
    )
    queries = pd.read_csv(tmp_path / "out" / "tables" / "queries.csv")
    assert queries["modality_shortcut"].isna().all() and len(queries) == 2  # nothing dropped: nothing known
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (
        manifest["counts"]["modality_shortcuts"]["not_triaged"] == 2
        and manifest["counts"]["modality_shortcuts"]["r"] is None
    )
    with db.read() as s:
        assert s.scalar(select(Dataset.name)) == "shop"
