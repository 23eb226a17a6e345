"""Admin: create blind studies, follow them (counts only while open), close them, read the results."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from db.enums import Role, StudyKind, StudyStatus
from services.core import auth
from services.core.errors import QrelsError
from services.datasets.catalog import list_datasets
from services.study.admin import (
    close_study,
    dataset_sources,
    dataset_systems,
    list_studies,
    study_progress,
)
from services.study.create import MAX_SAMPLE, TOP_N, create_preference_study, create_quality_study
from services.study.eligible import Eligibility, count_eligible
from services.study.results import PreferenceResults, QualityResults, responses_frame, study_results
from services.study.rubric import DEFAULT_RUBRIC, MAX_CRITERIA, Criterion
from ui.charts.study import distribution_chart, preference_chart
from ui.reports.study import create_lines, headline, readable, report_lines, significance_table, summary_table
from ui.state import database, require_role

KINDS = {"Query quality": StudyKind.QUERY_QUALITY, "System preference": StudyKind.SYSTEM_PREFERENCE}
KIND_NAMES = {v: k for k, v in KINDS.items()}
KEY_RESULTS = "sa_results"  # {(study, closed at): (results, responses CSV)}; a closed study never changes
KEY_CREATED = "sa_created"  # lines of the last creation report
RUBRIC_COLUMNS = ["criterion", "question", "1", "2", "3", "4", "5"]

user = require_role(Role.ADMIN)
db = database()
st.title("Studies")
st.caption(
    "Blind studies: raters score two queries for one target without knowing their sources "
    "(query quality), or pick the best of several systems' anonymous results (system preference). "
    "Scores stay sealed until a study is closed; closing locks it."
)

datasets = [d.name for d in list_datasets(db, actor=user)]
if not datasets:
    st.info("Import a dataset first.")
    st.stop()
tab_studies, tab_new = st.tabs(["Studies", "New study"])


def rubric_rows(frame: pd.DataFrame) -> list[Criterion]:
    criteria = []
    for row in frame.fillna("").to_dict("records"):
        if str(row["criterion"]).strip():
            criteria.append(
                Criterion(str(row["criterion"]), str(row["question"]), tuple(str(row[k]) for k in "12345"))
            )
    return criteria


def eligibility(kind: str, dataset: str, chosen: dict) -> Eligibility | None:
    """How many trials the choices so far allow (the sample's default), or None with the reason shown."""
    try:
        return count_eligible(db, user, dataset=dataset, kind=kind, **chosen)
    except QrelsError as e:
        st.warning(f"Nothing to sample yet: {e}")
        return None


with tab_new:
    kind = KINDS[st.radio("Kind", list(KINDS), horizontal=True, key="sa_kind")]
    dataset = st.selectbox("Dataset", datasets, key="sa_dataset")
    people = [u.name for u in auth.list_users(db, actor=user) if u.is_active]
    # What is compared decides what is eligible, so it sits outside the form and counts at once.
    with tempfile.TemporaryDirectory() as folder:
        if kind == StudyKind.QUERY_QUALITY:
            sources = dataset_sources(db, user, dataset)
            default = [s for s in ("generated", "human") if s in sources] or list(sources)[:2]
            chosen_sources = st.multiselect(
                "Sources compared (two)",
                list(sources),
                default=default,
                format_func=lambda s: f"{s} ({sources[s]} groups)",
                key="sa_sources",
            )
            compared = {"sources": chosen_sources}
        else:
            systems = st.multiselect(
                "Systems (rankings of this dataset)", dataset_systems(db, user, dataset), key="sa_systems"
            )
            uploads = st.file_uploader(
                "More systems as TREC run files (the file name, without extension, names the system)",
                accept_multiple_files=True,
                key="sa_runs",
            )
            top_n = st.radio("Results shown per system", TOP_N, horizontal=True, key="sa_top")
            run_files = {}
            for upload in uploads or []:
                path = Path(folder) / Path(upload.name).name
                path.write_bytes(upload.getvalue())
                run_files[path.stem] = path
            compared = {"systems": systems, "run_files": run_files, "top_n": int(top_n)}
        ready = len(compared["sources"]) == 2 if "sources" in compared else len(systems) + len(run_files) >= 2
        counted = eligibility(kind, dataset, compared) if ready else None
        if not ready:
            st.caption("Choose what to compare: two sources, or two or more systems.")
        if counted is not None:
            left_out = "; ".join(f"{n} x {why}" for why, n in sorted(counted.skipped.items()))
            st.caption(
                f"{counted.n_eligible} {counted.unit} are eligible; the sample defaults to all of them."
                + (f" Left out: {left_out}." if left_out else "")
            )
            signature = (kind, dataset, counted.n_eligible)
            if st.session_state.get("sa_sample_for") != signature:  # new choices: a new default
                st.session_state["sa_sample_for"] = signature
                st.session_state["sa_sample"] = max(1, min(counted.n_eligible, MAX_SAMPLE))
        with st.form("sa_new"):
            name = st.text_input(
                "Name",
                key="sa_name",
                max_chars=128,
                help="Raters see it, so it may not name a source or a system.",
            )
            if kind == StudyKind.QUERY_QUALITY:
                st.caption(
                    f"Rubric: up to {MAX_CRITERIA} criteria, each scored 1-5, with an anchor per score."
                )
                rubric = st.data_editor(
                    pd.DataFrame(
                        [[c.name, c.question, *c.anchors] for c in DEFAULT_RUBRIC], columns=RUBRIC_COLUMNS
                    ),
                    num_rows="dynamic",
                    hide_index=True,
                    width="stretch",
                    key="sa_rubric",
                )
            left, middle, right = st.columns(3)
            sample = left.number_input(
                "Trials to sample",
                1,
                MAX_SAMPLE,
                key="sa_sample",
                help="Defaults to every eligible trial; fewer draws a random sample (by the seed).",
            )
            per_trial = middle.number_input("Raters per trial", 1, 50, 3, key="sa_per_trial")
            seed = right.number_input("Seed", 0, 2**31 - 1, 0, key="sa_seed")
            raters = st.multiselect("Raters (empty: every active user)", people, key="sa_raters")
            go = st.form_submit_button("Create study", type="primary", key="sa_create", icon=":material/add:")
        if go:
            common = {
                "dataset": dataset,
                "name": name,
                "sample": int(sample),
                "raters_per_trial": int(per_trial),
                "raters": raters or None,
                "seed": int(seed),
            }
            try:
                if kind == StudyKind.QUERY_QUALITY:
                    report = create_quality_study(
                        db, user, sources=chosen_sources, rubric=rubric_rows(rubric) or None, **common
                    )
                else:
                    report = create_preference_study(
                        db, user, systems=systems, run_files=run_files, top_n=int(top_n), **common
                    )
            except QrelsError as e:
                st.error(str(e))
            else:
                st.session_state[KEY_CREATED] = create_lines(report)
                st.session_state["sa_study"] = report.study.name
                st.rerun()
    if created := st.session_state.get(KEY_CREATED):
        st.success(created[0])
        st.text("\n".join(line.strip() for line in created[1:]))


def show_results(results: QualityResults | PreferenceResults, responses: str, name: str) -> None:
    st.subheader("Results")
    with st.container(border=True):
        st.text(headline(results))
    table = summary_table(results)
    formats = {"preferred": "percent", "selection rate": "percent", "ratings": "int", "picks": "int"}
    if isinstance(results, QualityResults):
        formats[f"mean {results.criteria[0]}"] = "%.2f"
    st.dataframe(readable(table, formats), hide_index=True, width="stretch")
    tests = significance_table(results)
    st.dataframe(readable(tests), hide_index=True, width="stretch")
    with st.expander("Every figure: intervals, tests, agreement, position bias", expanded=True):
        st.code("\n".join(report_lines(results)), language=None, wrap_lines=True)
    if isinstance(results, QualityResults):
        cols = st.columns(len(results.criteria) + 1)
        for col, criterion in zip(cols, results.criteria, strict=False):
            col.altair_chart(distribution_chart(results, criterion), width="stretch")
        cols[-1].altair_chart(preference_chart(results), width="stretch")
    else:
        st.altair_chart(preference_chart(results), width="stretch")
    st.download_button(
        "Download the tests (CSV)",
        tests.to_csv(index=False),
        file_name=f"{name}-tests.csv",
        mime="text/csv",
        icon=":material/download:",
        key="sa_download_tests",
    )
    st.download_button(
        "Download every response (CSV, unblinded)",
        responses,
        file_name=f"{name}-responses.csv",
        mime="text/csv",
        icon=":material/download:",
        key="sa_download",
    )


with tab_studies:
    studies = list_studies(db, user)
    if not studies:
        st.info("No study yet: create one under New study.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "study": s.name,
                        "kind": KIND_NAMES[s.kind],
                        "dataset": s.dataset,
                        "status": s.status,
                        "items": s.n_trials,
                        "answered": f"{s.n_answered} / {s.n_assignments}",
                        "created": s.created_at.strftime("%Y-%m-%d %H:%M"),
                    }
                    for s in studies
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        names = [s.name for s in studies]
        if st.session_state.get("sa_study") not in names:
            st.session_state["sa_study"] = names[0]
        chosen = st.selectbox("Study", names, key="sa_study")
        info = next(s for s in studies if s.name == chosen)
        compared = ", ".join(info.compared)
        detail = (
            f"top {info.top_n} per system"
            if info.top_n
            else "criteria " + ", ".join(c.name for c in info.rubric)
        )
        st.caption(
            f"{KIND_NAMES[info.kind]} on {info.dataset}: {compared} · {detail} · {info.raters_per_trial} raters per "
            f"trial from {', '.join(info.raters)} · seed {info.seed}"
        )
        if info.status == StudyStatus.OPEN:
            progress = study_progress(db, user, chosen)
            st.progress(
                progress.n_answered / max(progress.n_assignments, 1),
                text=f"{progress.n_answered} / {progress.n_assignments} answers",
            )
            st.dataframe(
                pd.DataFrame(
                    [{"rater": r.rater, "answered": r.answered, "items": r.total} for r in progress.raters]
                ),
                hide_index=True,
                width="stretch",
            )
            st.caption(
                "Scores stay sealed while the study is open; closing it locks the answers and unseals them."
            )
            sure = st.checkbox("Close for good: no more answers, even unfinished ones", key="sa_confirm")
            if st.button("Close study", key="sa_close", disabled=not sure, icon=":material/lock:"):
                try:
                    close_study(db, user, chosen)
                except QrelsError as e:
                    st.error(str(e))
                else:
                    st.session_state.pop("sa_confirm", None)
                    st.rerun()
        else:
            cache = st.session_state.setdefault(KEY_RESULTS, {})
            key = (chosen, info.closed_at)
            if key not in cache:
                try:
                    with st.spinner("Computing the results…"):
                        cache[key] = (
                            study_results(db, user, chosen),
                            responses_frame(db, user, chosen).to_csv(index=False),
                        )
                except QrelsError as e:
                    st.error(str(e))
                    st.stop()
            show_results(*cache[key], chosen)
