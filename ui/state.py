"""Per-session state and the server-side role gate every page calls first.

Shared, thread-safe things (the database handle, keyed by URL) live in ``st.cache_resource``;
who is logged in lives in ``st.session_state`` under the constants below.
"""

from __future__ import annotations

import time

import streamlit as st

from db.session import Database
from services.core.auth import Actor, get_actor, may
from services.core.config import load_settings
from services.core.errors import AuthError

KEY_USER = "qs_user"
KEY_LAST_SEEN = "qs_last_seen"
KEY_NOTICE = "qs_notice"


@st.cache_resource(show_spinner=False)
def _database(url: str) -> Database:
    return Database(url)


def database() -> Database:
    """The database handle for this process's ``QRELS_DB_URL``."""
    return _database(load_settings().db_url)


def log_in(actor: Actor) -> None:
    st.session_state[KEY_USER] = actor
    st.session_state[KEY_LAST_SEEN] = time.time()


def log_out(notice: str | None = None) -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if notice:
        st.session_state[KEY_NOTICE] = notice


def current_user() -> Actor | None:
    """The logged-in actor, or None; logs out after the configured inactivity."""
    actor = st.session_state.get(KEY_USER)
    if actor is None:
        return None
    timeout_s = load_settings().session_timeout_minutes * 60
    last_seen = st.session_state.get(KEY_LAST_SEEN, 0.0)
    if time.time() - last_seen > timeout_s:
        log_out("Your session expired after inactivity; please log in again.")
        return None
    st.session_state[KEY_LAST_SEEN] = time.time()
    return actor


def require_role(*roles: str) -> Actor:
    """Stop the page unless the user is logged in with one of ``roles`` (admins always pass).

    Called at the top of every page, so a page reached by a typed URL shows nothing of its
    content to the wrong role.
    """
    actor = current_user()
    if actor is None:
        from ui.login import render_login  # ui.login imports this module

        render_login()
        st.stop()
    try:
        # The role is re-read so a demoted or deactivated user loses access at once.
        actor = get_actor(database(), actor.id) if actor.id is not None else actor
    except AuthError as e:
        log_out(str(e))
        st.rerun()
    st.session_state[KEY_USER] = actor
    _account_box(actor)
    if roles and not may(actor, *roles):
        st.error("You do not have access to this page.")
        st.stop()
    return actor


def _account_box(actor: Actor) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{actor.name}** · {actor.role}")
        if st.button("Log out", icon=":material/logout:", key="logout"):
            log_out()
            st.rerun()
