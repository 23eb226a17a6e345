"""Qrels Studio: the router. Navigation built per role; pages do the rest.

Every page is registered (hidden) so a typed URL always reaches its page's role gate
(``ui.state.require_role``), which shows the login form to a visitor and nothing to a user whose
role may not open it. The sidebar menu lists only the pages the user's role may open.
"""

from __future__ import annotations

import streamlit as st

from db.enums import Role
from ui.session import current_user

st.set_page_config(page_title="Qrels Studio", page_icon=":material/fact_check:", layout="wide")

ALL = (Role.ADMIN, Role.REVIEWER, Role.ANNOTATOR)

# The one list of pages: (page, menu section, roles that may open it).
PAGES: list[tuple[st.Page, str, tuple[str, ...]]] = [
    (st.Page("pages/home.py", title="Overview", icon=":material/home:", default=True), "Work", ALL),
    (
        st.Page("pages/workbench.py", title="Workbench", icon=":material/checklist:"),
        "Work",
        (Role.ANNOTATOR,),
    ),
    (st.Page("pages/review.py", title="Review", icon=":material/gavel:"), "Work", (Role.REVIEWER,)),
    (st.Page("pages/rate.py", title="Rate", icon=":material/star_rate:"), "Work", ALL),
    (st.Page("pages/dashboard.py", title="Dashboard", icon=":material/monitoring:"), "Admin", (Role.ADMIN,)),
    (st.Page("pages/datasets.py", title="Datasets", icon=":material/database:"), "Admin", (Role.ADMIN,)),
    (
        st.Page("pages/assignments.py", title="Assignments", icon=":material/assignment_ind:"),
        "Admin",
        (Role.ADMIN,),
    ),
    (st.Page("pages/ranking.py", title="Ranking", icon=":material/sort:"), "Admin", (Role.ADMIN,)),
    (st.Page("pages/export.py", title="Export", icon=":material/ios_share:"), "Admin", (Role.ADMIN,)),
    (st.Page("pages/study_admin.py", title="Studies", icon=":material/science:"), "Admin", (Role.ADMIN,)),
    (st.Page("pages/users.py", title="Users", icon=":material/group:"), "Admin", (Role.ADMIN,)),
    (st.Page("pages/account.py", title="Account", icon=":material/person:"), "Account", ALL),
]


def menu_for(role: str) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {}
    for page, section, roles in PAGES:
        if role in roles:
            sections.setdefault(section, []).append(page)
    return sections


navigation = st.navigation([page for page, _, _ in PAGES], position="hidden")
user = current_user()
if user is not None:
    with st.sidebar:
        for section, pages in menu_for(user.role).items():
            st.caption(section)
            for page in pages:
                st.page_link(page)
navigation.run()
