"""Overview: the datasets and how far their annotation has come."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.enums import Role
from services.datasets.catalog import list_datasets
from ui.state import database, require_role

user = require_role()
st.title("Overview")
st.write(f"Welcome, {user.name}.")

datasets = list_datasets(database(), actor=user)
if not datasets:
    if user.role == Role.ADMIN:
        st.info(
            "No datasets yet. Import one on the Datasets page or with `python cli.py import PATH --dataset NAME`."
        )
    else:
        st.info("No datasets yet; an admin has to import one first.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "dataset": d.name,
            "format": d.source_format,
            "items": d.n_items,
            "queries": d.n_queries,
            "labelled positives": d.n_qrels,
            "assignments done": f"{d.n_assignments_done} / {d.n_assignments}",
        }
        for d in datasets
    ]
)
st.dataframe(table, hide_index=True, width="stretch")
