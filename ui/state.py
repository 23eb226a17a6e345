"""The server-side role gate every page calls first.

Who is logged in lives in :mod:`ui.session` (session state and the session cookie); this module
decides what a page may show.
"""

from __future__ import annotations

import streamlit as st

from services.core.auth import Actor, get_actor, may
from services.core.errors import AuthError
from ui.login import render_login
from ui.session import (
    KEY_USER,
    current_user,
    database,
    log_out,
    sync_cookie,
)


def require_role(*roles: str) -> Actor:
    """Stop the page unless the user is logged in with one of ``roles`` (admins always pass).

    Called at the top of every page, so a page reached by a typed URL shows nothing of its
    content to the wrong role.
    """
    actor = current_user()
    sync_cookie()
    if actor is None:
        render_login()
        st.stop()
    try:
        # The role is re-read so a demoted or deactivated user loses access at once.
        actor = get_actor(database(), actor.id) if actor.id is not None else actor
    except AuthError as e:
        log_out(str(e))
        st.rerun()
    st.session_state[KEY_USER] = actor
    _account_box()
    if roles and not may(actor, *roles):
        st.error("You do not have access to this page.")
        st.stop()
    return actor


def _account_box() -> None:
    actor = st.session_state[KEY_USER]
    with st.sidebar:
        st.caption(f"Signed in as **{actor.name}** · {actor.role}")
        if st.button("Log out", icon=":material/logout:", key="logout"):
            log_out()
            st.rerun()
