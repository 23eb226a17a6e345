"""Admin: embed a dataset's pool and rank every query (the candidates annotators see)."""

from __future__ import annotations

import streamlit as st

from db.enums import JobStatus, Role
from services.core.errors import QrelsError
from services.datasets.catalog import list_datasets
from services.ranking.jobs import latest_jobs, start_ranking_job
from services.ranking.models import model_for
from ui.state import database, require_role

user = require_role(Role.ADMIN)
db = database()
st.title("Ranking")
st.caption(
    "Candidates come from four rankers — CLIP query text → item image, CLIP query text → item text, "
    "BM25 over item text, and a hybrid summing the three scores, standardised — pooled by weighted "
    "reciprocal rank fusion. Each candidate remembers its rankers."
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

if st.button("Embed and rank", type="primary", key="ranking_start", icon=":material/play_arrow:"):
    try:
        start_ranking_job(db, dataset, k=int(k), actor=user)
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
            st.write(f"Job {job.id} · **{job.status}**")
            if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                st.progress(job.done / max(job.total, 1), text=f"{job.message}: {job.done:,} / {job.total:,}")
            elif job.status == JobStatus.FAILED:
                st.error(job.message)
            else:
                st.caption(job.message)


jobs()
