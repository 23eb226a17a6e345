"""Admin: embed a dataset's pool, rank every query (the candidates annotators see), triage the queries."""

from __future__ import annotations

import streamlit as st

from db.enums import JobStatus, Role
from services.core.errors import QrelsError
from services.datasets.catalog import list_datasets
from services.duplicates.copies import duplicate_overview
from services.duplicates.jobs import start_duplicates_job
from services.ranking.jobs import latest_jobs, start_ranking_job
from services.ranking.models import model_for
from services.triage.compute import triage_dataset
from ui.state import database, require_role

LIVE = (JobStatus.QUEUED, JobStatus.RUNNING)

user = require_role(Role.ADMIN)
db = database()
st.title("Ranking")
st.caption(
    "Candidates come from four rankers — CLIP query text → item image, CLIP query text → item text, "
    "BM25 over item text, and a hybrid summing the three scores, standardised — pooled by weighted "
    "reciprocal rank fusion. Each candidate remembers its rankers. When ranking finishes, every query "
    "is triaged from the stored runs: a suspicion score (for the problems-first queue) and which "
    "single modality, if any, solves it alone."
)

datasets = list_datasets(db, actor=user)
if not datasets:
    st.info("Import a dataset first.")
    st.stop()
dataset = st.selectbox("Dataset", [d.name for d in datasets], key="ranking_dataset")
summary = next(d for d in datasets if d.name == dataset)
model, pretrained = model_for(summary.settings)
st.write(f"Model: `{model}` · weights: `{pretrained}`")
k = st.number_input("Candidates per query and ranker (k)", 1, 1000, summary.settings.k, key="ranking_k")

left, right = st.columns(2)
if left.button("Embed and rank", type="primary", key="ranking_start", icon=":material/play_arrow:"):
    try:
        start_ranking_job(db, dataset, k=int(k), actor=user)
    except QrelsError as e:
        st.error(str(e))
if right.button(
    "Triage again from the stored runs",
    key="ranking_triage",
    icon=":material/troubleshoot:",
    help="After the qrels or the modality rank r changed: no embedding, no ranking.",
):
    try:
        st.success(triage_dataset(db, dataset, actor=user).summary())
    except QrelsError as e:
        st.error(str(e))


@st.fragment(run_every=1.0)
def jobs() -> None:
    """Refreshes itself every second, not the whole page."""
    rows = latest_jobs(db, dataset, actor=user)
    if not rows:
        st.caption("No ranking job has run on this dataset yet.")
        return
    for job in rows:
        with st.container(border=True):
            beat = "" if job.heartbeat_age_s is None else f" · heard from {job.heartbeat_age_s:.0f} s ago"
            st.write(f"Job {job.id} · **{job.status}**{beat if job.status in LIVE else ''}")
            if job.status in LIVE:
                if job.total:
                    st.progress(
                        min(job.done / job.total, 1.0), text=f"{job.message}: {job.done:,} / {job.total:,}"
                    )
                else:
                    st.caption(job.message)
            elif job.status == JobStatus.FAILED:
                st.error(job.message)
            else:
                st.caption(job.message)


jobs()

st.subheader("Copies in the pool")
st.caption(
    "After ranking, items whose images are copies — the same bytes, or re-encoded, resized or slightly "
    "cropped — are grouped (perceptual hash, CLIP cosine and a pixel check). Annotators see how many "
    "copies a card has and can give them the same label; the export reports copies of positives."
)
overview = duplicate_overview(db, dataset, limit=20, actor=user)
st.write(f"**{overview.groups:,}** groups, **{overview.items:,}** items (largest: {overview.largest}).")
if overview.listed:
    st.dataframe(
        [
            {
                "representative": g.representative,
                "copies": ", ".join(g.members),
                "evidence": "; ".join(g.evidence),
            }
            for g in overview.listed
        ],
        hide_index=True,
        width="stretch",
    )
if st.button("Find copies again", key="ranking_duplicates", icon=":material/content_copy:"):
    try:
        start_duplicates_job(db, dataset, actor=user)
    except QrelsError as e:
        st.error(str(e))
