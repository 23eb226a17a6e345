"""The annotation workbench: one query at a time, judged from the keyboard (or the mouse) in the browser.

The judging surface is one component (ui/components/workbench); this page feeds it the query on
screen and answers what it asks (ui/components/workbench/actions.py). The query on screen is in
the URL (``?a=<assignment>``), so a reload opens it again.
"""

from __future__ import annotations

import streamlit as st

from db.enums import Role
from services.annotation.queue import my_datasets
from services.core.errors import QrelsError
from ui.components.workbench.actions import Desk
from ui.components.workbench.component import event, mount
from ui.state import database, require_role

user = require_role(Role.ANNOTATOR)
datasets = my_datasets(database(), user)
if not datasets:
    st.title("Workbench")
    st.info("No queries are assigned to you yet. An admin assigns them on the Assignments page.")
    st.stop()
dataset = st.sidebar.selectbox("Dataset", datasets, key="wb_dataset") if len(datasets) > 1 else datasets[0]
desk = Desk(database(), user, dataset, st.session_state)
desk.land(st.query_params.get("a"))
st.html("<style>.stMainBlockContainer, .block-container { padding-top: 2.2rem; padding-bottom: 0; }</style>")


@st.fragment
def workbench() -> None:
    """Only this part reruns when the component asks something (submit, draft, search, ...)."""
    try:
        data = desk.data()
    except QrelsError:  # the query on screen went away (deleted dataset, reassigned): the next one
        desk.open(None)
        desk.state["wb_current"].pop(dataset, None)
        desk.land(None)
        data = desk.data()
    aid = data.get("query", {}).get("aid")
    if aid is None:
        st.query_params.pop("a", None)
    else:
        st.query_params["a"] = str(aid)
    handlers = {
        "submit": lambda: desk.submit(event("submit")),
        "draft": lambda: desk.draft(event("draft")),
        "search": lambda: desk.search(event("search")),
        "nav": lambda: desk.nav(event("nav")),
        "history": lambda: desk.history(event("history")),
    }
    mount(data, handlers)


workbench()
task = st.session_state.get("wb_task")
if task is not None and task.guidelines.strip():
    with st.sidebar.expander("Guidelines", icon=":material/help:"):
        st.markdown(task.guidelines)  # written by an admin, not by the benchmark
