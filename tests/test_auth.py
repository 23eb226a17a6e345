"""Accounts: argon2 hashes, login, lockout, roles enforced in the services."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import User, utcnow
from db.session import Database
from services.core import auth
from services.core.auth import SYSTEM, Actor
from services.core.errors import AuthError, PermissionDenied, ValidationError
from services.datasets import catalog as datasets
from services.datasets.settings import update_settings
from tests.conftest import PASSWORD


def test_passwords_are_stored_as_argon2_hashes(db: Database, users: dict[str, Actor]) -> None:
    with db.read() as s:
        stored = s.scalars(select(User.password_hash)).all()
    assert stored and all(h.startswith("$argon2id$") for h in stored)
    assert all(PASSWORD not in h for h in stored)


def test_login_with_right_and_wrong_password(db: Database, users: dict[str, Actor]) -> None:
    actor = auth.authenticate(db, "ann1", PASSWORD)
    assert (actor.name, actor.role) == ("ann1", "annotator")
    with pytest.raises(AuthError, match="wrong user name or password"):
        auth.authenticate(db, "ann1", "nope nope nope")
    with pytest.raises(AuthError, match="wrong user name or password"):
        auth.authenticate(db, "nobody", PASSWORD)


def test_failed_logins_lock_the_account(db: Database, users: dict[str, Actor], monkeypatch) -> None:
    monkeypatch.setenv("QRELS_MAX_FAILED_LOGINS", "3")
    monkeypatch.setenv("QRELS_LOCKOUT_MIN", "10")
    for _ in range(3):
        with pytest.raises(AuthError):
            auth.authenticate(db, "ann2", "wrong password!")
    with pytest.raises(AuthError, match="too many failed logins"):
        auth.authenticate(db, "ann2", PASSWORD)  # even the right password waits
    later = utcnow() + timedelta(minutes=11)
    assert auth.authenticate(db, "ann2", PASSWORD, now=later).name == "ann2"


def test_deactivated_user_cannot_log_in(db: Database, users: dict[str, Actor]) -> None:
    auth.set_active(db, "ann1", False, actor=users["admin"])
    with pytest.raises(AuthError, match="deactivated"):
        auth.authenticate(db, "ann1", PASSWORD)
    with pytest.raises(AuthError):
        auth.get_actor(db, users["ann1"].id)


def test_password_never_logged(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth.add_user(db, "logged", "annotator", "s3cret-password")
    with pytest.raises(AuthError):
        auth.authenticate(db, "logged", "other-s3cret")
    auth.authenticate(db, "logged", "s3cret-password")
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("x", "annotator", PASSWORD, "2-64 letters"),
        ("bad name", "annotator", PASSWORD, "2-64 letters"),
        ("ok", "superuser", PASSWORD, "unknown role"),
        ("ok", "annotator", "short", "at least 8"),
        ("ANN1", "annotator", PASSWORD, "exists already"),
    ],
)
def test_bad_user_input(db: Database, users, name: str, role: str, password: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        auth.add_user(db, name, role, password)


def test_admin_services_refuse_annotators_and_reviewers(db: Database, users: dict[str, Actor]) -> None:
    for who in ("ann1", "reviewer"):
        actor = users[who]
        calls = [
            lambda a=actor: auth.add_user(db, "newbie", "annotator", PASSWORD, actor=a),
            lambda a=actor: auth.list_users(db, actor=a),
            lambda a=actor: auth.set_active(db, "ann2", False, actor=a),
            lambda a=actor: auth.set_password(db, "ann2", PASSWORD, actor=a),
            lambda a=actor: datasets.set_guidelines(db, "x", "", actor=a),
            lambda a=actor: update_settings(db, "x", {"k": 5}, actor=a),
            lambda a=actor: datasets.delete_dataset(db, "x", actor=a),
        ]
        for call in calls:
            with pytest.raises(PermissionDenied):
                call()


def test_users_may_change_their_own_password(db: Database, users: dict[str, Actor]) -> None:
    auth.set_password(db, "ann1", "a brand new password", actor=users["ann1"])
    assert auth.authenticate(db, "ann1", "a brand new password").name == "ann1"


def test_require_role() -> None:
    assert auth.require_role(SYSTEM, "reviewer") is SYSTEM  # admins pass every check
    with pytest.raises(PermissionDenied, match="log in"):
        auth.require_role(None, "annotator")
