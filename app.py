"""Qrels Studio: the router. Login gate and navigation built per role; pages do the rest.

The account box in the sidebar is drawn by each page's role gate (``ui.state.require_role``).
"""

from __future__ import annotations

import streamlit as st

from db.models import ROLE_ADMIN, ROLE_ANNOTATOR, ROLE_REVIEWER
from ui.state import current_user

st.set_page_config(page_title="Qrels Studio", page_icon=":material/fact_check:", layout="wide")

ALL = (ROLE_ADMIN, ROLE_REVIEWER, ROLE_ANNOTATOR)

# The one list of pages: (page, section, roles that see it). Each page checks its role itself too.
PAGES: list[tuple[st.Page, str, tuple[str, ...]]] = [
    (st.Page("pages/home.py", title="Overview", icon=":material/home:", default=True), "Work", ALL),
    (st.Page("pages/datasets.py", title="Datasets", icon=":material/database:"), "Admin", (ROLE_ADMIN,)),
    (st.Page("pages/users.py", title="Users", icon=":material/group:"), "Admin", (ROLE_ADMIN,)),
    (st.Page("pages/account.py", title="Account", icon=":material/person:"), "Account", ALL),
]
LOGIN_PAGE = st.Page("pages/login.py", title="Log in", icon=":material/login:", default=True)


def pages_for(role: str) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {}
    for page, section, roles in PAGES:
        if role in roles:
            sections.setdefault(section, []).append(page)
    return sections


user = current_user()
if user is None:
    navigation = st.navigation([LOGIN_PAGE], position="hidden")
else:
    navigation = st.navigation(pages_for(user.role))
navigation.run()
