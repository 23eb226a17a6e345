"""The login form, shown by the role gate on whatever page was asked for (deep links work)."""

from __future__ import annotations

import streamlit as st

from services.core import sessions
from services.core.auth import authenticate
from services.core.errors import AuthError
from ui.session import KEY_NOTICE, database, log_in


def render_login() -> None:
    """Draw the login form; on success store the user (and a session cookie) and rerun the page."""
    st.title("Qrels Studio")
    st.caption(
        "Validate the test split of a retrieval benchmark: judge positives, find the missed ones, clean it."
    )
    notice = st.session_state.pop(KEY_NOTICE, None)
    if notice:
        st.info(notice)
    with st.form("login", clear_on_submit=False):
        name = st.text_input("User name", key="login_name", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="login_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            actor = authenticate(database(), name, password)
        except AuthError as e:
            st.error(str(e))
        else:
            started = sessions.start_session(database(), actor)
            log_in(actor, token_id=started.token_id, claim=started.claim)
            st.rerun()
