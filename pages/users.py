"""Admin: user accounts and roles."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.enums import Role
from services.core import auth
from services.core.errors import QrelsError
from ui.state import database, require_role

user = require_role(Role.ADMIN)
db = database()
st.title("Users")

users = auth.list_users(db, actor=user)
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": u.name,
                "role": u.role,
                "active": u.is_active,
                "last login": u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
            }
            for u in users
        ]
    ),
    hide_index=True,
    width="stretch",
)

left, right = st.columns(2)
with left, st.form("add_user", clear_on_submit=True):
    st.subheader("Add a user")
    name = st.text_input("Name")
    role = st.selectbox("Role", tuple(Role), index=tuple(Role).index("annotator"))
    password = st.text_input("Initial password", type="password")
    if st.form_submit_button("Add user", type="primary"):
        try:
            auth.add_user(db, name, role, password, actor=user)
        except QrelsError as e:
            st.error(str(e))
        else:
            st.success(f"Added {name} as {role}.")
            st.rerun()

with right, st.form("manage_user"):
    st.subheader("Manage a user")
    target = st.selectbox("User", [u.name for u in users])
    new_password = st.text_input("New password (leave empty to keep)", type="password")
    active = st.radio("Account", ["active", "deactivated"], horizontal=True)
    if st.form_submit_button("Apply"):
        try:
            if new_password:
                auth.set_password(db, target, new_password, actor=user)
            auth.set_active(db, target, active == "active", actor=user)
        except QrelsError as e:
            st.error(str(e))
        else:
            st.success(f"Updated {target}.")
