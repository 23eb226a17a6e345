"""Who is logged in, per browser session: kept in ``st.session_state`` and in the session cookie.

A reload (or the reconnect after a server restart) starts a new Streamlit session; the HttpOnly
cookie (services/core/sessions.py) logs the user back in without the password. Shared,
thread-safe things (the database handle, keyed by URL) live in ``st.cache_resource``.
"""

from __future__ import annotations

import logging
import time
import uuid

import streamlit as st

from db.session import Database
from services.core import sessions
from services.core.auth import Actor
from services.core.config import load_settings
from services.datasets.deletion import resume_in_background
from ui.components.cookie import clear_cookie, set_cookie

log = logging.getLogger(__name__)

KEY_USER = "qs_user"
KEY_LAST_SEEN = "qs_last_seen"
KEY_NOTICE = "qs_notice"
KEY_TOKEN = "qs_token_id"  # the id of this browser's session token (to log it out)
KEY_CLAIM = "qs_claim"  # (code, nonce): a cookie to set, until the browser says it is set
KEY_CLEAR = "qs_clear_cookie"  # nonce: the cookie to clear after a logout
_SEEN_EVERY_S = 60


@st.cache_resource(show_spinner=False)
def _database(url: str) -> Database:
    db = Database(url)
    try:  # once per process: a dataset delete that died with the last server resumes now
        resume_in_background(db)
    except Exception:
        log.exception("could not look for dataset deletions to resume")
    return db


def database() -> Database:
    """The database handle for this process's ``QRELS_DB_URL``."""
    return _database(load_settings().db_url)


def log_in(actor: Actor, *, token_id: int | None = None, claim: str | None = None) -> None:
    """Remember ``actor`` for this browser session; ``claim`` is a code for a new session cookie."""
    st.session_state[KEY_USER] = actor
    st.session_state[KEY_LAST_SEEN] = time.time()
    st.session_state.pop(KEY_CLEAR, None)
    if token_id is not None:
        st.session_state[KEY_TOKEN] = token_id
    if claim is not None:
        st.session_state[KEY_CLAIM] = (claim, uuid.uuid4().hex)


def log_out(notice: str | None = None) -> None:
    """Forget the user here, revoke this browser's session token, and clear its cookie."""
    actor, token_id = st.session_state.get(KEY_USER), st.session_state.get(KEY_TOKEN)
    if actor is not None and token_id is not None:
        sessions.end_session(database(), actor, token_id)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[KEY_CLEAR] = uuid.uuid4().hex
    if notice:
        st.session_state[KEY_NOTICE] = notice


def current_user() -> Actor | None:
    """The logged-in actor (from this session, else from the session cookie), or None.

    Logs out after the configured inactivity.
    """
    actor = st.session_state.get(KEY_USER)
    if actor is None:
        actor = _from_cookie()
        if actor is None:
            return None
    timeout_s = load_settings().session_timeout_minutes * 60
    last_seen = st.session_state.get(KEY_LAST_SEEN, 0.0)
    now = time.time()
    if now - last_seen > timeout_s:
        log_out("Your session expired after inactivity; please log in again.")
        return None
    if now - last_seen > _SEEN_EVERY_S and st.session_state.get(KEY_TOKEN) is not None:
        sessions.seen(database(), actor, st.session_state[KEY_TOKEN])
    st.session_state[KEY_LAST_SEEN] = now
    return actor


def _from_cookie() -> Actor | None:
    if st.session_state.get(KEY_CLEAR):
        return None  # just logged out: the browser may still send the old cookie once
    try:
        cookie = st.context.cookies.get(sessions.COOKIE)
    except Exception:  # no browser context (AppTest, bare mode)
        return None
    restored = sessions.restore(database(), cookie)
    if restored is None:
        return None
    if restored.due_for_rotation:
        rotated = sessions.start_session(database(), restored.actor, replaces=restored.token_id)
        log_in(restored.actor, token_id=rotated.token_id, claim=rotated.claim)
    else:
        log_in(restored.actor, token_id=restored.token_id)
    return restored.actor


def sync_cookie() -> None:
    """Mount the cookie component when a cookie must be set or cleared (every page calls this)."""
    pending = st.session_state.get(KEY_CLAIM)
    if pending is not None:
        code, nonce = pending
        done = set_cookie(code, nonce)
        if done and done.get("nonce") == nonce:
            st.session_state.pop(KEY_CLAIM, None)
    elif (nonce := st.session_state.get(KEY_CLEAR)) is not None:
        clear_cookie(nonce)
