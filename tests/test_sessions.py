"""Sessions that survive a reload: a one-time claim, a signed cookie, expiry, rotation, revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from db.accounts import SessionToken
from db.models import utcnow
from db.session import Database
from services.core import auth, sessions
from services.core.auth import Actor


def cookie_for(db: Database, actor: Actor, **kw) -> tuple[str, int]:
    started = sessions.start_session(db, actor, **kw)
    claimed = sessions.claim(db, started.claim)
    assert claimed is not None
    return claimed[0], started.token_id


def test_a_claim_is_exchanged_once_for_a_cookie_that_restores_the_user(db: Database, users) -> None:
    me = users["ann1"]
    started = sessions.start_session(db, me)
    value, max_age = sessions.claim(db, started.claim)
    assert 11 * 3600 < max_age <= 12 * 3600
    assert sessions.claim(db, started.claim) is None  # used
    assert sessions.claim(db, "made-up") is None
    restored = sessions.restore(db, value)
    assert restored.actor == Actor(me.id, "ann1", "annotator") and restored.token_id == started.token_id
    assert sessions.media_user(db, value) == me.id
    with db.read() as s:
        row = s.get(SessionToken, started.token_id)
        assert started.claim not in (row.token_hash or "") and value.split(".")[4] not in (
            row.token_hash or ""
        )


def test_a_tampered_or_foreign_cookie_restores_nobody(db: Database, users) -> None:
    value, _ = cookie_for(db, users["ann1"])
    parts = value.split(".")
    as_admin = ".".join([parts[0], parts[1], str(users["admin"].id), *parts[3:]])
    assert sessions.restore(db, as_admin) is None  # the signature covers the user id
    assert sessions.restore(db, value[:-2] + "xx") is None
    assert sessions.restore(db, "") is None and sessions.restore(db, None) is None
    assert sessions.restore(db, "v1.1.1.1.1.1") is None


def test_expiry_idle_time_logout_deactivation_and_a_new_password_end_a_session(
    db: Database, users, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = users["ann1"]
    value, token_id = cookie_for(db, me)
    with db.write() as s:  # idle longer than QRELS_SESSION_TIMEOUT_MIN
        s.execute(
            update(SessionToken)
            .where(SessionToken.id == token_id)
            .values(last_seen_at=utcnow() - timedelta(hours=2))
        )
    assert sessions.restore(db, value) is None
    value, token_id = cookie_for(db, me)
    sessions.end_session(db, me, token_id)  # log out
    assert sessions.restore(db, value) is None
    value, _ = cookie_for(db, me)
    auth.set_active(db, "ann1", False)
    assert sessions.restore(db, value) is None
    auth.set_active(db, "ann1", True)
    assert sessions.restore(db, value) is None  # revoked, not merely refused while inactive
    value, _ = cookie_for(db, me)
    auth.set_password(db, "ann1", "another long password")
    assert sessions.restore(db, value) is None
    monkeypatch.setenv("QRELS_SESSION_MAX_HOURS", "0")
    value, _ = cookie_for(db, me)
    assert sessions.restore(db, value) is None  # expired as soon as made


def test_rotation_keeps_the_old_cookie_briefly_then_only_the_new_one(db: Database, users) -> None:
    me = users["ann1"]
    old, old_id = cookie_for(db, me)
    new, new_id = cookie_for(db, me, replaces=old_id)
    assert new_id != old_id
    assert sessions.restore(db, old) is not None  # a second tab reloading now still gets in
    with db.write() as s:
        s.execute(
            update(SessionToken)
            .where(SessionToken.id == old_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert sessions.restore(db, old) is None and sessions.restore(db, new).token_id == new_id


def test_an_expired_claim_gives_no_cookie(db: Database, users) -> None:
    started = sessions.start_session(db, users["ann1"])
    with db.write() as s:
        s.execute(
            update(SessionToken)
            .where(SessionToken.id == started.token_id)
            .values(claim_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert sessions.claim(db, started.claim) is None


def test_the_media_route_forgets_a_cookie_revoked_by_another_process(
    db: Database, users, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Images are checked against remembered cookies; a logout elsewhere (only the database knows)
    reaches them at the next revocation check."""
    monkeypatch.setattr(sessions, "_MEDIA_RECHECK_S", 0.0)
    me, other = users["ann1"], users["ann2"]
    value, token_id = cookie_for(db, me)
    kept, _ = cookie_for(db, other)
    assert sessions.media_user(db, value) == me.id and sessions.media_user(db, kept) == other.id
    with db.write() as s:  # what end_session does in the other process
        s.execute(update(SessionToken).where(SessionToken.id == token_id).values(revoked_at=utcnow()))
    assert sessions.media_user(db, value) is None
    assert sessions.media_user(db, kept) == other.id
    auth.set_active(db, "ann2", False)  # a deactivation revokes the user's sessions too
    assert sessions.media_user(db, kept) is None
