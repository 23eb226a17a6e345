"""The signed-in user's own account: change the password."""

from __future__ import annotations

import streamlit as st

from services.core import auth
from services.core.errors import QrelsError
from ui.state import database, require_role

user = require_role()
st.title("Account")
st.write(f"**{user.name}** · role: {user.role}")

with st.form("change_password", clear_on_submit=True):
    current = st.text_input("Current password", type="password")
    new = st.text_input("New password", type="password")
    again = st.text_input("New password again", type="password")
    if st.form_submit_button("Change password", type="primary"):
        if new != again:
            st.error("The two new passwords differ.")
        else:
            try:
                auth.authenticate(database(), user.name, current)
                auth.set_password(database(), user.name, new, actor=user)
            except QrelsError as e:
                st.error(str(e))
            else:
                st.success("Password changed.")
