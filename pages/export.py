"""Admin: export the cleaned test split and compare every ranking before and after cleaning."""

from __future__ import annotations

import functools

import altair as alt
import pandas as pd
import streamlit as st

from db.enums import Role
from services.cleaning import evaluation
from services.cleaning.policy import POSITIVE_RULES, QUERY_RULES, SHORTCUT_RULES, Policy
from services.cleaning.sampling import STRATIFY_FIELDS
from services.core.errors import QrelsError
from services.datasets.catalog import list_datasets
from services.export.archive import zip_export
from services.export.export import ExportReport, export_dataset
from services.export.options import DUPLICATE_OPTIONS, FORMATS, ExportOptions
from ui.state import database, require_role

KEY_LAST_EXPORT = "export_last_report"
KEY_EVALUATION = "export_evaluation"
DUPLICATE_WORDS = {
    "leave": "leave them (report only)",
    "add": "add them as positives",
    "collapse": "collapse each group to one item",
}
REASONS = {
    "too_few_annotators": "too few annotators",
    "rejected": "rejected",
    "no_positive_left": "no positive left",
    "single_modality": "one modality alone solves it",
}

user = require_role(Role.ADMIN)
db = database()
st.title("Export")
st.caption(
    "Apply a consensus policy to the annotators' work (a reviewer's adjudication always wins), "
    "optionally draw a stratified sample, and write the cleaned test split in every format. "
    "The same data and options always give the same files."
)

datasets = list_datasets(db, actor=user)
if not datasets:
    st.info("Import a dataset first.")
    st.stop()
dataset = st.selectbox("Dataset", [d.name for d in datasets], key="export_dataset")

with st.form("export_form"):
    left, middle, right = st.columns(3)
    min_annotators = left.number_input(
        "Annotators a query needs",
        0,
        50,
        2,
        key="export_min_annotators",
        help="Queries with fewer finished annotations are dropped; 0 keeps unannotated queries as they are.",
    )
    query_rule = middle.selectbox(
        "Query rule",
        QUERY_RULES,
        key="export_query_rule",
        help="unanimous: no annotator rejected it; majority: more than half approved it; dawid_skene / "
        "mace: a model that weighs each annotator by their estimated competence keeps it when it is "
        "at least as likely good as bad.",
    )
    positive_rule = right.selectbox(
        "Positive rule",
        POSITIVE_RULES,
        key="export_positive_rule",
        help="Among the annotators who approved the query: majority (a tie keeps the original "
        "label), any, or unanimous; dawid_skene / mace: positive when the model's probability of "
        "relevance is over one half (recorded per item in manifest.json). Gold queries always take "
        "their gold answer.",
    )
    left, right = st.columns([1, 2])
    shortcuts = left.selectbox(
        "Queries one modality alone solves",
        SHORTCUT_RULES,
        key="export_shortcuts",
        help="keep or drop the queries whose labelled positives the image ranker alone, or a text "
        "ranker alone, puts first (their modality shortcut, computed after ranking; "
        "tables/queries.* has it per query and manifest.json counts them).",
    )
    formats = right.multiselect("Formats", FORMATS, default=list(FORMATS), key="export_formats")
    left, middle, right = st.columns(3)
    size = left.number_input("Sample size (0: every kept query)", 0, 10_000_000, 0, key="export_size")
    stratify = middle.multiselect("Stratify the sample over", STRATIFY_FIELDS, key="export_stratify")
    seed = right.number_input("Seed", 0, 2**31 - 1, 0, key="export_seed")
    duplicates = st.radio(
        "Copies of positives in the pool",
        DUPLICATE_OPTIONS,
        format_func=DUPLICATE_WORDS.get,
        horizontal=True,
        key="export_duplicates",
        help="Items whose images are copies of a positive's (found by the ranking job). They are listed "
        "in changes.csv and manifest.json in any case.",
    )
    go = st.form_submit_button("Export", type="primary", key="export_go", icon=":material/download:")

policy: Policy | None = None
try:
    policy = Policy(int(min_annotators), query_rule, positive_rule, shortcuts)
except QrelsError as e:
    st.error(str(e))

if go and policy is not None:
    try:
        options = ExportOptions(
            formats=tuple(formats),
            policy=policy,
            size=int(size) or None,
            stratify=tuple(stratify),
            seed=int(seed),
            duplicates=str(duplicates),
        )
        with st.spinner("Writing the export…"):
            st.session_state[KEY_LAST_EXPORT] = export_dataset(db, dataset, None, options, actor=user)
        st.session_state.pop(KEY_EVALUATION, None)
    except QrelsError as e:
        st.error(f"Nothing was exported. {e}")

report: ExportReport | None = st.session_state.get(KEY_LAST_EXPORT)
if report is not None and report.dataset == dataset:
    queries, qrels = report.counts["queries"], report.counts["qrels"]
    st.success(f"Exported {queries['exported']:,} queries to `{report.out_dir}`.")
    columns = st.columns(5)
    columns[0].metric("Queries exported", f"{queries['exported']:,}", help=f"of {queries['total']:,}")
    columns[1].metric("Dropped", f"{sum(queries['dropped'].values()):,}")
    columns[2].metric("Rewritten", f"{queries['rewritten']:,}")
    columns[3].metric("Positives added", f"{qrels['positives_added']:,}")
    columns[4].metric("Positives removed", f"{qrels['positives_removed']:,}")
    copies = (report.manifest.get("duplicates") or {}).get("counts") or {}
    if copies:
        words = {
            "reported": "reported",
            "added": "added as positives",
            "judged_not_relevant": "judged not relevant",
        }
        st.caption(
            "Copies of positives in the pool: "
            + ", ".join(f"{n:,} {words.get(k, k)}" for k, n in copies.items())
            + " (see changes.csv)."
        )
    if queries["not_sampled"]:
        st.caption(f"{queries['not_sampled']:,} kept queries were not drawn in the sample (see changes.csv).")
    st.download_button(
        "Download the export (zip)",
        data=functools.partial(zip_export, report.out_dir),
        file_name=f"{report.dataset}-{report.out_dir.name}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/folder_zip:",
        key="export_download",
    )
    for warning in report.warnings:
        st.warning(warning)
    competence = report.manifest.get("aggregation", {}).get("competence", [])
    if competence:
        st.subheader("Estimated competence")
        st.caption(
            "Per annotator, from the model the policy uses: on item labels (balanced accuracy for "
            "Dawid–Skene, the chance of knowing rather than guessing for MACE) and on query verdicts."
        )
        st.dataframe(pd.DataFrame(competence), hide_index=True, width="stretch")
    if report.dropped:
        st.subheader("Dropped queries")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "query": d.query_id,
                        "reason": REASONS.get(d.reason, d.reason),
                        "why": d.detail,
                        "text": d.text,
                    }
                    for d in report.dropped
                ]
            ),
            hide_index=True,
            width="stretch",
        )

st.subheader("Before and after cleaning")
labels_from = "the export above" if report is not None and report.dataset == dataset else "the policy above"
st.caption(
    f"Each ranking of this dataset scored against the original labels and against the cleaned labels "
    f"of {labels_from}, with ranx. A query whose top 10 holds a positive the original labels missed "
    "was scored wrong before cleaning."
)
if st.button("Evaluate the rankings", key="export_evaluate", icon=":material/monitoring:") and policy:
    try:
        with st.spinner("Scoring every ranking (the very first time also compiles the metrics)…"):
            st.session_state[KEY_EVALUATION] = evaluation.evaluate_dataset(
                db,
                dataset,
                policy=policy,
                export_dir=report.out_dir if report is not None and report.dataset == dataset else None,
                actor=user,
            )
    except QrelsError as e:
        st.error(str(e))

result: evaluation.EvaluationReport | None = st.session_state.get(KEY_EVALUATION)
if result is not None and result.dataset == dataset:
    if not result.scores:
        st.info("This dataset has no rankings yet; rank it on the Ranking page first.")
    else:
        st.caption(
            f"Original labels: {result.n_original_queries:,} queries · cleaned labels: "
            f"{result.n_cleaned_queries:,} queries ({result.cleaned_from})."
        )
        st.dataframe(
            pd.DataFrame(result.table()).round(4),
            hide_index=True,
            width="stretch",
            column_config={"delta": st.column_config.NumberColumn("cleaned − original", format="%+.4f")},
        )
        chart = (
            alt.Chart(pd.DataFrame(result.long_table()))
            .mark_bar()
            .encode(
                x=alt.X("metric:N", sort=list(evaluation.METRICS), title=None),
                xOffset=alt.XOffset("labels:N", sort=[evaluation.ORIGINAL, evaluation.CLEANED]),
                y=alt.Y("value:Q", title="score", scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("labels:N", title="labels", sort=[evaluation.ORIGINAL, evaluation.CLEANED]),
                tooltip=["run", "labels", "metric", alt.Tooltip("value:Q", format=".4f")],
            )
            .properties(width=300, height=200)
            .facet(facet=alt.Facet("run:N", title=None), columns=2)
        )
        st.altair_chart(chart)
        st.dataframe(
            pd.DataFrame(
                [
                    {"ranking": m.run, "queries with a missed positive in the top 10": m.queries, "of": m.of}
                    for m in result.missed
                ]
            ),
            hide_index=True,
        )
