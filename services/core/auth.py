"""Users, passwords and roles.

Passwords are argon2 hashes (argon2-cffi) and never logged. Failed logins are counted per user and
lock the account for a while after too many. Every service that needs a role takes the acting
user (:class:`Actor`) and calls :func:`require_role`, so roles hold even if a page forgets.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.accounts import SessionToken
from db.enums import Role
from db.models import User, utcnow
from db.session import Database
from services.core.config import load_settings
from services.core.errors import AuthError, PermissionDenied, ValidationError
from services.core.lookups import user_or_404

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so timing does not reveal names.
_DUMMY_HASH = _hasher.hash("not a password")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
MIN_PASSWORD_CHARS = 8


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in user, or the CLI operator (``SYSTEM``, an admin)."""

    id: int | None
    name: str
    role: str


SYSTEM = Actor(None, "cli", Role.ADMIN)


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    role: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


def require_role(actor: Actor | None, *roles: str) -> Actor:
    """Return ``actor`` if it has one of ``roles`` (admins pass every check), else refuse."""
    if actor is None:
        raise PermissionDenied("log in first")
    if actor.role == Role.ADMIN or actor.role in roles:
        return actor
    raise PermissionDenied(f"this needs the {' or '.join(roles)} role; {actor.name} is {actor.role}")


def may(actor: Actor | None, *roles: str) -> bool:
    """Whether ``actor`` has one of ``roles`` (admins always do): for pages that hide what they cannot open."""
    return actor is not None and (actor.role == Role.ADMIN or actor.role in roles)


P = ParamSpec("P")
R = TypeVar("R")
# The attribute @allow and @public leave on a service function: the roles that may call it
# (``None`` for @public). tests/test_roles.py finds every service by it.
ROLES_ATTR = "allowed_roles"


def allow(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare who may call a service function, and refuse everyone else before it runs.

    The function takes the acting user as its ``actor`` argument (positional or keyword; when it
    has a default such as :data:`SYSTEM`, the CLI's operator, that default counts when none is
    given). Admins pass every check.

    Example:
        >>> @allow(Role.REVIEWER)
        ... def review_queue(db: Database, actor: Actor, dataset: str) -> list[ReviewEntry]: ...
    """
    if not roles:
        raise TypeError("@allow needs at least one role; use @public for functions anyone may call")

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(fn)
        if "actor" not in signature.parameters:
            raise TypeError(f"{fn.__qualname__} is @allow'ed but takes no 'actor' argument")
        default = signature.parameters["actor"].default
        default = None if default is inspect.Parameter.empty else default

        @functools.wraps(fn)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind_partial(*args, **kwargs)
            require_role(bound.arguments.get("actor", default), *roles)
            return fn(*args, **kwargs)

        setattr(checked, ROLES_ATTR, tuple(roles))
        return checked

    return decorate


def public(reason: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a service function that needs no logged-in user, and say why (it is read in review)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        setattr(fn, ROLES_ATTR, None)
        fn.public_reason = reason  # type: ignore[attr-defined]
        return fn

    return decorate


EVERYONE = tuple(Role)  # any logged-in user: @allow(*EVERYONE)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def generate_password() -> str:
    """A random password that is easy to type: 4 groups of 4 characters."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def _to_info(user: User) -> UserInfo:
    return UserInfo(user.id, user.name, user.role, user.is_active, user.created_at, user.last_login_at)


@allow(Role.ADMIN)
def add_user(db: Database, name: str, role: str, password: str, *, actor: Actor = SYSTEM) -> UserInfo:
    """Create a user.

    Raises:
        ValidationError: bad name, unknown role, short password, or the name is taken.
    """
    if not NAME_RE.match(name or ""):
        raise ValidationError("a user name is 2-64 letters, digits, '.', '_' or '-'")
    if role not in tuple(Role):
        raise ValidationError(f"unknown role {role!r}; choose one of {', '.join(tuple(Role))}")
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    password_hash = hash_password(password)  # before the write: writers queue behind each other
    with db.write() as s:
        if s.scalar(select(User.id).where(func.lower(User.name) == name.lower())) is not None:
            raise ValidationError(f"a user named {name!r} exists already")
        user = User(name=name, role=role, password_hash=password_hash)
        s.add(user)
        s.flush()
        log.info("user %s added with role %s", name, role)
        return _to_info(user)


@allow(Role.ADMIN)
def list_users(db: Database, *, actor: Actor = SYSTEM, role: str | None = None) -> list[UserInfo]:
    with db.read() as s:
        stmt = select(User).order_by(User.name)
        if role is not None:
            stmt = stmt.where(User.role == role)
        return [_to_info(u) for u in s.scalars(stmt)]


@allow(Role.ADMIN)
def set_active(db: Database, name: str, active: bool, *, actor: Actor = SYSTEM) -> None:
    with db.write() as s:
        user = user_or_404(s, name)
        if actor.id == user.id and not active:
            raise ValidationError("you cannot deactivate your own account")
        user.is_active = active
        if not active:
            _revoke_sessions(s, user.id)


@allow(*EVERYONE)
def set_password(db: Database, name: str, password: str, *, actor: Actor = SYSTEM) -> None:
    """Set a user's password (admins for anyone, a user for themselves)."""
    if actor.name != name:
        require_role(actor, Role.ADMIN)
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    password_hash = hash_password(password)  # before the write: writers queue behind each other
    with db.write() as s:
        user = user_or_404(s, name)
        user.password_hash = password_hash
        user.failed_logins = 0
        user.locked_until = None
        _revoke_sessions(s, user.id)  # every browser logged in with the old password logs in again


def _revoke_sessions(s: Session, user_id: int) -> None:
    s.execute(
        update(SessionToken)
        .where(SessionToken.user_id == user_id, SessionToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


@public("logging in: it checks the name and password it is given")
def authenticate(db: Database, name: str, password: str, *, now: datetime | None = None) -> Actor:
    """Check a name and password and return the actor.

    Raises:
        AuthError: wrong name or password (one message for both), inactive or locked account.
    """
    settings = load_settings()
    now = now or utcnow()
    name = (name or "").strip()
    # The password is checked outside any write transaction: argon2 takes a good fraction of a
    # second, and on SQLite a write transaction holds the database-wide lock, so holding it
    # while hashing would let login attempts starve everyone's saves.
    with db.read() as s:
        user = s.scalar(select(User).where(User.name == name))
    if user is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password or "x")
        raise AuthError("wrong user name or password")  # nothing is written for unknown names
    locked_until = user.locked_until
    if locked_until is not None and locked_until > now:
        minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
        raise AuthError(f"too many failed logins; try again in {minutes} minute(s) or ask an admin")
    try:
        _hasher.verify(user.password_hash, password or "")
        ok = True
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    new_hash = hash_password(password) if ok and _hasher.check_needs_rehash(user.password_hash) else None
    with db.write() as s:  # a short transaction that records the outcome
        row = s.get(User, user.id)
        if not ok:
            row.failed_logins += 1
            if row.failed_logins >= settings.max_failed_logins:
                row.locked_until = now + timedelta(minutes=settings.lockout_minutes)
                row.failed_logins = 0
                log.warning("account %s locked after repeated failed logins", row.name)
        elif row.is_active:
            if new_hash is not None:
                row.password_hash = new_hash
            row.failed_logins = 0
            row.locked_until = None
            row.last_login_at = now
    if not ok:
        raise AuthError("wrong user name or password")
    if not user.is_active:
        raise AuthError("this account is deactivated; ask an admin")
    return Actor(user.id, user.name, user.role)


@public("the session gate reloads the logged-in user's own row, by the id it holds")
def get_actor(db: Database, user_id: int) -> Actor:
    """Reload a logged-in user (role or active flag may have changed since login)."""
    with db.read() as s:
        user = s.get(User, user_id)
        if user is None or not user.is_active:
            raise AuthError("your account no longer exists or is deactivated")
        return Actor(user.id, user.name, user.role)
