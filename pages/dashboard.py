"""Admin dashboard: progress, throughput, verdicts, positives by provenance, agreement, planted truth."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from db.enums import Role
from services.agreement import report as agreement
from services.agreement.dashboard import dashboard, dataset_overview
from services.datasets.catalog import list_datasets
from services.gold.dashboard import gold_dashboard
from ui.charts.gold import accuracy_chart, kinds_chart
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


def chart(frame: pd.DataFrame, spec: alt.Chart, empty: str) -> None:
    if frame.empty:
        st.caption(empty)
    else:
        st.altair_chart(spec, width="stretch")


@st.fragment(run_every=REFRESH_SECONDS)
def figures() -> None:
    """Redrawn every few seconds without reloading the page."""
    data = dashboard(db, user, dataset)
    overview = pd.DataFrame(dataset_overview(db, user))

    left, right = st.columns(2)
    with left:
        st.subheader("Progress per dataset")
        frame = (
            overview.melt(
                id_vars="dataset", value_vars=["done", "assigned"], var_name="count", value_name="queries"
            )
            if not overview.empty
            else overview
        )
        chart(
            frame,
            alt.Chart(frame)
            .mark_bar()
            .encode(x="queries:Q", y="dataset:N", color="count:N", yOffset="count:N"),
            "No assignments yet.",
        )
    with right:
        st.subheader("Progress per annotator")
        frame = pd.DataFrame(data.progress)
        if not frame.empty:
            frame["pending"] = frame["assigned"] - frame["done"] - frame["skipped"]
            frame = frame.melt(
                id_vars="annotator",
                value_vars=["done", "skipped", "pending"],
                var_name="status",
                value_name="queries",
            )
        chart(
            frame,
            alt.Chart(frame).mark_bar().encode(x="queries:Q", y="annotator:N", color="status:N"),
            "No assignments in this dataset yet.",
        )

    left, right = st.columns(2)
    with left:
        st.subheader("Throughput per hour")
        frame = pd.DataFrame(data.throughput)
        chart(
            frame,
            alt.Chart(frame).mark_line(point=True).encode(x="hour:T", y="submissions:Q", color="annotator:N"),
            "No submissions yet.",
        )
    with right:
        st.subheader("Median time per query")
        frame = pd.DataFrame(data.median_seconds)
        chart(
            frame,
            alt.Chart(frame)
            .mark_bar()
            .encode(x="median seconds per query:Q", y="annotator:N", tooltip=["submissions"]),
            "No submissions yet.",
        )

    left, right = st.columns(2)
    with left:
        st.subheader("Query verdicts and reject reasons")
        frame = pd.DataFrame(data.verdicts)
        chart(
            frame,
            alt.Chart(frame)
            .mark_bar()
            .encode(x="count:Q", y="verdict:N", color=alt.Color("reason:N", title="reason")),
            "No verdicts yet.",
        )
    with right:
        st.subheader("Positives by provenance")
        frame = pd.DataFrame(data.positives)
        chart(
            frame,
            alt.Chart(frame).mark_bar().encode(x="count:Q", y="source:N", color="outcome:N"),
            "No judgments yet.",
        )

    st.subheader("Agreement")
    report = agreement.agreement_report(db, user, dataset)
    rows = []
    for what, summary in (("item labels", report.items), ("query verdicts", report.verdicts)):
        for pair in summary.pairs:
            rows.append(
                {
                    "on": what,
                    "annotators": f"{pair.rater_a} / {pair.rater_b}",
                    "units": pair.n_units,
                    "agreement": pair.percent.value,
                    "Cohen's kappa": pair.cohen_kappa.value,
                    "Gwet's AC1": pair.gwet_ac1.value,
                }
            )
        rows.append(
            {
                "on": what,
                "annotators": "all (Fleiss' kappa / Krippendorff's alpha / AC1)",
                "units": summary.n_units,
                "agreement": summary.fleiss_kappa.value,
                "Cohen's kappa": summary.krippendorff_alpha.value,
                "Gwet's AC1": summary.gwet_ac1.value,
            }
        )
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for row in report.sets:
        st.caption(
            f"Positive sets {row.annotator_a} / {row.annotator_b}: {row.n_queries} queries, "
            f"mean Jaccard {row.mean_jaccard:.3f}, mean F1 {row.mean_f1:.3f}"
        )
    if report.added:
        st.caption(
            f"Added positives also found by another annotator: {report.added_confirmed} / {report.added}"
        )

    st.subheader("Agreement over time")
    frame = pd.DataFrame(agreement.agreement_over_time(db, user, dataset))
    chart(
        frame,
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(x="day:T", y=alt.Y("value:Q", scale=alt.Scale(domain=[-1, 1])), color="statistic:N"),
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
