"""Users, passwords and roles.

Passwords are argon2 hashes (argon2-cffi) and never logged. Failed logins are counted per user and
lock the account for a while after too many. Every service that needs a role takes the acting
user (:class:`Actor`) and calls :func:`require_role`, so roles hold even if a page forgets.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select

from db.models import ROLE_ADMIN, ROLES, User, utcnow
from db.session import Database
from services.config import load_settings
from services.errors import AuthError, NotFoundError, PermissionDenied, ValidationError

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

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


SYSTEM = Actor(None, "cli", ROLE_ADMIN)


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
    if actor.role == ROLE_ADMIN or actor.role in roles:
        return actor
    raise PermissionDenied(f"this needs the {' or '.join(roles)} role; {actor.name} is {actor.role}")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def generate_password() -> str:
    """A random password that is easy to type: 4 groups of 4 characters."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def _to_info(user: User) -> UserInfo:
    return UserInfo(user.id, user.name, user.role, user.is_active, user.created_at, user.last_login_at)


def add_user(db: Database, name: str, role: str, password: str, *, actor: Actor = SYSTEM) -> UserInfo:
    """Create a user.

    Raises:
        ValidationError: bad name, unknown role, short password, or the name is taken.
    """
    require_role(actor, ROLE_ADMIN)
    if not NAME_RE.match(name or ""):
        raise ValidationError("a user name is 2-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    with db.write() as s:
        if s.scalar(select(User.id).where(func.lower(User.name) == name.lower())) is not None:
            raise ValidationError(f"a user named {name!r} exists already")
        user = User(name=name, role=role, password_hash=hash_password(password))
        s.add(user)
        s.flush()
        log.info("user %s added with role %s", name, role)
        return _to_info(user)


def list_users(db: Database, *, actor: Actor = SYSTEM, role: str | None = None) -> list[UserInfo]:
    require_role(actor, ROLE_ADMIN)
    with db.read() as s:
        stmt = select(User).order_by(User.name)
        if role is not None:
            stmt = stmt.where(User.role == role)
        return [_to_info(u) for u in s.scalars(stmt)]


def set_active(db: Database, name: str, active: bool, *, actor: Actor = SYSTEM) -> None:
    require_role(actor, ROLE_ADMIN)
    with db.write() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFoundError(f"no user named {name!r}")
        if actor.id == user.id and not active:
            raise ValidationError("you cannot deactivate your own account")
        user.is_active = active


def set_password(db: Database, name: str, password: str, *, actor: Actor = SYSTEM) -> None:
    """Set a user's password (admins for anyone, a user for themselves)."""
    if actor.name != name:
        require_role(actor, ROLE_ADMIN)
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    with db.write() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFoundError(f"no user named {name!r}")
        user.password_hash = hash_password(password)
        user.failed_logins = 0
        user.locked_until = None


def count_users(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count(User.id))) or 0


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
    if locked_until is not None and locked_until.tzinfo is None:  # SQLite drops the zone
        locked_until = locked_until.replace(tzinfo=UTC)
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


def get_actor(db: Database, user_id: int) -> Actor:
    """Reload a logged-in user (role or active flag may have changed since login)."""
    with db.read() as s:
        user = s.get(User, user_id)
        if user is None or not user.is_active:
            raise AuthError("your account no longer exists or is deactivated")
        return Actor(user.id, user.name, user.role)
