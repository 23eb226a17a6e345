"""Admin: give a dataset's queries to annotators, with an overlap, and see each queue's size."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.enums import Role
from services.core import auth
from services.core.errors import QrelsError
from services.datasets.assignment import assign, queue_sizes
from services.datasets.catalog import list_datasets
from ui.state import database, require_role

user = require_role(Role.ADMIN)
db = database()
st.title("Assignments")

datasets = list_datasets(db, actor=user)
if not datasets:
    st.info("Import a dataset first.")
    st.stop()
annotators = [u.name for u in auth.list_users(db, actor=user, role=Role.ANNOTATOR) if u.is_active]

with st.form("assign"):
    dataset = st.selectbox("Dataset", [d.name for d in datasets], key="assign_dataset")
    chosen = st.multiselect("Annotators (empty: all active annotators)", annotators, key="assign_annotators")
    default_overlap = next(d for d in datasets if d.name == dataset).settings.overlap
    overlap = st.number_input(
        "Annotators per query (overlap)", 1, 10, int(default_overlap), key="assign_overlap"
    )
    go = st.form_submit_button("Assign", type="primary", key="assign_go")
if go:
    try:
        report = assign(db, dataset, overlap=int(overlap), annotators=chosen or None, actor=user)
    except QrelsError as e:
        st.error(str(e))
    else:
        st.success(f"Assigned {report.n_new:,} new query slots in {dataset}.")
        if report.n_queries_short:
            st.warning(
                f"{report.n_queries_short:,} queries have fewer than {overlap} annotators: add annotators."
            )

sizes = queue_sizes(db, actor=user)
if sizes:
    st.subheader("Queues")
    st.dataframe(pd.DataFrame([s.__dict__ for s in sizes]), hide_index=True, width="stretch")
