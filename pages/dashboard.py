"""Admin dashboard: progress, throughput, verdicts, positives by provenance, agreement, planted truth,
gold, and triage (modality shortcuts, the most suspicious queries)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from db.enums import Role
from services.agreement import report as agreement
from services.agreement.dashboard import dashboard, dataset_overview
from services.datasets.catalog import list_datasets
from services.gold.dashboard import gold_dashboard
from services.triage.views import triage_overview
from ui.charts import dashboard as charts
from ui.charts.gold import accuracy_chart, kinds_chart
from ui.charts.triage import shortcut_shares
from ui.reports.agreement import TABLE_COLUMNS, agreement_table, paradox_line
from ui.state import database, require_role

REFRESH_SECONDS = 30

user = require_role(Role.ADMIN)
db = database()
st.title("Dashboard")

datasets = [d.name for d in list_datasets(db, actor=user)]
if not datasets:
    st.info("No datasets yet.")
    st.stop()
dataset = st.selectbox("Dataset", datasets, key="dash_dataset")


def chart(spec: alt.Chart | None, empty: str) -> None:
    if spec is None:
        st.caption(empty)
    else:
        st.altair_chart(spec, width="stretch")


@st.fragment(run_every=REFRESH_SECONDS)
def figures() -> None:
    """Redrawn every few seconds without reloading the page."""
    data = dashboard(db, user, dataset)

    left, right = st.columns(2)
    with left:
        st.subheader("Progress per dataset")
        chart(charts.dataset_progress(dataset_overview(db, user)), "No assignments yet.")
    with right:
        st.subheader("Progress per annotator")
        chart(charts.annotator_progress(data.progress), "No assignments in this dataset yet.")

    left, right = st.columns(2)
    with left:
        st.subheader("Throughput per hour")
        chart(charts.throughput(data.throughput), "No submissions yet.")
    with right:
        st.subheader("Median time per query")
        chart(charts.median_time(data.median_seconds), "No submissions yet.")

    left, right = st.columns(2)
    with left:
        st.subheader("Query verdicts and reject reasons")
        chart(charts.verdicts(data.verdicts), "No verdicts yet.")
    with right:
        st.subheader("Positives by provenance")
        chart(charts.positives(data.positives), "No judgments yet.")

    st.subheader("Agreement")
    report = agreement.agreement_report(db, user, dataset)
    st.dataframe(
        pd.DataFrame(agreement_table(report), columns=list(TABLE_COLUMNS)),
        hide_index=True,
        width="stretch",
        column_config={
            "on": st.column_config.TextColumn(width="small"),
            "annotators": st.column_config.TextColumn(width="small"),
            "statistic": st.column_config.TextColumn(width="small"),
            "value": st.column_config.TextColumn(width="small"),
            "units": st.column_config.TextColumn(width="small"),
            "what it means": st.column_config.TextColumn(width="large"),
        },
    )
    if note := paradox_line(report):
        st.info(note, icon=":material/balance:")
    for row in report.sets:
        jaccard = "—" if row.mean_jaccard is None else f"{row.mean_jaccard:.3f}"
        f1 = "—" if row.mean_f1 is None else f"{row.mean_f1:.3f}"
        st.caption(
            f"Positive sets {row.annotator_a} / {row.annotator_b}: {row.n_queries} queries, "
            f"mean Jaccard {jaccard}, mean F1 {f1}"
        )
    if report.added:
        st.caption(
            f"Added positives also found by another annotator: {report.added_confirmed} / {report.added}"
        )

    st.subheader("Agreement over time")
    chart(
        charts.agreement_over_time(agreement.agreement_over_time(db, user, dataset)),
        "Agreement needs queries done by two or more annotators.",
    )

    if data.planted is not None:
        p = data.planted
        st.subheader("Planted truth caught (demo)")
        cols = st.columns(3)
        cols[0].metric("False negatives found", f"{p.false_negatives_found} / {p.false_negatives}")
        cols[1].metric("Wrong positives caught", f"{p.wrong_positives_caught} / {p.wrong_positives}")
        cols[2].metric("Bad queries rejected", f"{p.bad_queries_rejected} / {p.bad_queries}")
        st.caption(f"Over the {p.queries_annotated} queries annotated so far.")


figures()


# Gold queries and estimated competence (a section of its own: services/gold/dashboard.py, ui/charts/gold.py).
@st.fragment(run_every=REFRESH_SECONDS)
def gold_section() -> None:
    data = gold_dashboard(db, dataset, actor=user)
    st.subheader("Gold queries and competence")
    mixing = f"one in {data.rate} assignments" if data.rate else "none mixed in (gold_rate 0)"
    st.caption(
        f"{data.n_gold} gold queries ({mixing}; training mode {'on' if data.training else 'off'}). "
        "Gold accuracy is measured on them; competence is what Dawid–Skene and MACE estimate from all "
        f"of an annotator's work. The dashed line is the warning threshold ({data.threshold} %)."
    )
    for row in data.rows:
        if row["warning"]:
            st.warning(
                f"{row['annotator']}: gold accuracy {row['gold accuracy']:.0%} over {row['gold queries']} "
                f"gold queries, below {data.threshold} %."
            )
    if not data.rows:
        st.caption("No finished work yet.")
        return
    st.altair_chart(accuracy_chart(data), width="stretch")
    st.dataframe(pd.DataFrame(data.rows), hide_index=True, width="stretch")
    if data.kind_rows():
        st.altair_chart(kinds_chart(data), width="stretch")


gold_section()


def triage_section() -> None:
    """Computed when ranking finishes (services/triage): read here, never computed at page time."""
    data = triage_overview(db, dataset, actor=user)
    st.subheader("Modality shortcuts and suspicious queries")
    if not data.n_triaged:
        st.caption("Not triaged yet: ranking the dataset (Ranking page or `cli.py rank`) computes it.")
        return
    order = "problems first" if data.queue_order == "problems_first" else "shuffled"
    st.caption(
        f"{data.n_triaged:,} of {data.n_queries:,} queries triaged. A query is solvable by one modality "
        f"when that modality's ranker alone places every labelled positive with fewer than "
        f"{data.shortcut_rank} unlabelled items above it. Queue order: {order}; "
        f"suspicion hints to annotators: {'on' if data.show_hints else 'off'} (Datasets page, Settings)."
    )
    chart(shortcut_shares(data.share_rows()), "No query triaged.")
    st.dataframe(pd.DataFrame(data.most_suspicious), hide_index=True, width="stretch")


triage_section()
