"""Browser sessions that survive a reload: the login kept in a signed, expiring, revocable cookie.

The flow:

1. After the password is checked, :func:`start_session` stores a pending session and returns a
   one-time *claim* code (random, valid 2 minutes). The page receives it over its websocket and
   posts it to the app's own ``/qs/session`` route, which calls :func:`claim`: that makes the
   token and answers with it as an ``HttpOnly; SameSite=Strict`` cookie — the page's scripts
   never see the token.
2. On a reload (or when the browser reconnects after a server restart) the new Streamlit session
   reads the cookie and calls :func:`restore`, which checks the signature, the expiry, the idle
   time and the database row (not revoked, the user still active) and returns the user.
3. Tokens are rotated: :func:`start_session` with ``replaces=`` makes a new claim; once it is
   claimed the old token stays valid :data:`ROTATION_GRACE` more (so two tabs reloading at the
   same moment both stay in), then dies. Logging out, a deactivation or a password change revoke
   the user's tokens (:func:`end_session`, :func:`revoke_user_sessions`).

The cookie value is ``v1.<id>.<user id>.<expiry>.<random>.<signature>``: HMAC-SHA256 with a
random secret of this installation (kept in the database, so every app process shares it) over
the rest. The database stores only the SHA-256 of the random part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from db.accounts import AppSecret, SessionToken
from db.enums import Role
from db.models import User, utcnow
from db.session import Database
from services.core.auth import EVERYONE, Actor, allow, public
from services.core.config import load_settings

log = logging.getLogger(__name__)

COOKIE = "qs_session"
CLAIM_SECONDS = 120
ROTATION_GRACE = timedelta(seconds=60)
ROTATE_AFTER = timedelta(minutes=10)  # a restored session older than this gets a new token
_SEEN_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often per token
_VERSION = "v1"


@dataclass(frozen=True)
class NewSession:
    token_id: int
    claim: str  # the one-time code the page exchanges for the cookie


@dataclass(frozen=True)
class RestoredSession:
    actor: Actor
    token_id: int
    issued_at: datetime

    @property
    def due_for_rotation(self) -> bool:
        return utcnow() - self.issued_at > ROTATE_AFTER


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_secret_cache: dict[str, bytes] = {}
_secret_lock = threading.Lock()


def _secret(db: Database) -> bytes:
    """The installation's signing secret: made once, shared by every process through the database."""
    with _secret_lock:
        cached = _secret_cache.get(db.url)
        if cached is not None:
            return cached
        with db.read() as s:
            value = s.scalar(select(AppSecret.value).where(AppSecret.name == "session"))
        if value is None:
            try:
                with db.write() as s:
                    s.add(AppSecret(name="session", value=secrets.token_urlsafe(48)))
            except IntegrityError:
                pass  # another process made it first
            with db.read() as s:
                value = s.scalar(select(AppSecret.value).where(AppSecret.name == "session"))
        _secret_cache[db.url] = value.encode()
        return _secret_cache[db.url]


def _sign(db: Database, body: str) -> str:
    digest = hmac.new(_secret(db), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@allow(*EVERYONE)
def start_session(db: Database, actor: Actor, *, replaces: int | None = None) -> NewSession:
    """A browser session of ``actor``, with the one-time claim code exchanged for its cookie."""
    settings = load_settings()
    code = secrets.token_urlsafe(32)
    now = utcnow()
    with db.write() as s:
        row = SessionToken(
            user_id=actor.id,
            claim_hash=_sha(code),
            claim_expires_at=now + timedelta(seconds=CLAIM_SECONDS),
            created_at=now,
            expires_at=now + timedelta(hours=settings.session_max_hours),
            last_seen_at=now,
            replaces_id=replaces,
        )
        s.add(row)
        s.flush()
        return NewSession(row.id, code)


@public("exchanging a one-time claim code, which only the logged-in page received, for its cookie")
def claim(db: Database, code: str) -> tuple[str, int] | None:
    """The cookie value and its max-age in seconds for a claim code, or None (unknown, used, expired)."""
    if not code or len(code) > 100:
        return None
    _secret(db)  # made (in its own transaction) before this one takes the write lock
    now = utcnow()
    with db.write() as s:
        row = s.scalar(select(SessionToken).where(SessionToken.claim_hash == _sha(code)).with_for_update())
        if (
            row is None
            or row.revoked_at is not None
            or row.claim_expires_at is None
            or row.claim_expires_at < now
        ):
            return None
        random_part = secrets.token_urlsafe(32)
        expires = int(row.expires_at.timestamp())
        body = f"{_VERSION}.{row.id}.{row.user_id}.{expires}.{random_part}"
        row.token_hash = _sha(random_part)
        row.claim_hash = None
        row.claim_expires_at = None
        row.last_seen_at = now
        if row.replaces_id is not None:
            s.execute(
                update(SessionToken)
                .where(SessionToken.id == row.replaces_id, SessionToken.expires_at > now + ROTATION_GRACE)
                .values(expires_at=now + ROTATION_GRACE)
            )
        return f"{body}.{_sign(db, body)}", max(0, expires - int(now.timestamp()))


def _parse(db: Database, cookie: str) -> tuple[int, int, int, str] | None:
    parts = (cookie or "").split(".")
    if len(parts) != 6 or parts[0] != _VERSION:
        return None
    body, signature = ".".join(parts[:5]), parts[5]
    if not hmac.compare_digest(_sign(db, body), signature):
        return None
    try:
        token_id, user_id, expires = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None
    if expires < time.time():
        return None
    return token_id, user_id, expires, parts[4]


@public("reading back a browser's own session cookie: the signed token is the credential")
def restore(db: Database, cookie: str | None) -> RestoredSession | None:
    """The user a session cookie belongs to, or None when it is not (or no longer) valid."""
    parsed = _parse(db, cookie or "") if cookie else None
    if parsed is None:
        return None
    token_id, user_id, _expires, random_part = parsed
    now = utcnow()
    idle = timedelta(minutes=load_settings().session_timeout_minutes)
    with db.read() as s:
        row = s.get(SessionToken, token_id)
        user = s.get(User, user_id)
        if (
            row is None
            or user is None
            or not user.is_active
            or row.user_id != user_id
            or row.revoked_at is not None
            or row.token_hash is None
            or not hmac.compare_digest(row.token_hash, _sha(random_part))
            or row.expires_at <= now
            or row.last_seen_at + idle <= now
        ):
            return None
        issued, seen = row.created_at, row.last_seen_at
        actor = Actor(user.id, user.name, Role(user.role))
    if now - seen > _SEEN_EVERY:
        _touch(db, token_id, now)
    return RestoredSession(actor, token_id, issued)


def _touch(db: Database, token_id: int, now: datetime, *, user_id: int | None = None) -> None:
    stmt = update(SessionToken).where(SessionToken.id == token_id, SessionToken.revoked_at.is_(None))
    if user_id is not None:
        stmt = stmt.where(SessionToken.user_id == user_id)
    try:
        with db.write() as s:
            s.execute(stmt.values(last_seen_at=now))
    except Exception:  # a busy database must not log anyone out; the next request tries again
        log.warning("could not record session %d as seen", token_id, exc_info=True)


@allow(*EVERYONE)
def seen(db: Database, actor: Actor, token_id: int) -> None:
    """Record that a browser session of ``actor`` is in use (its idle timeout starts again)."""
    _touch(db, token_id, utcnow(), user_id=actor.id)


@allow(*EVERYONE)
def end_session(db: Database, actor: Actor, token_id: int) -> None:
    """Log out one browser session of ``actor`` (its cookie stops working at once)."""
    with db.write() as s:
        s.execute(
            update(SessionToken)
            .where(
                SessionToken.id == token_id,
                SessionToken.user_id == actor.id,
                SessionToken.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )


# The media route checks the cookie on every thumbnail (a page asks for 100 at once), so valid
# cookies are remembered for a while. Revocation lives in the database, and another app process
# may be the one that revoked: at most every _MEDIA_RECHECK_S, one query asks which remembered
# tokens were revoked (a logout, a deactivation, a new password) or expired, and forgets them.
_MEDIA_TTL_S = 30.0
_MEDIA_RECHECK_S = 1.0


@dataclass
class _MediaCache:
    cookies: dict[str, tuple[float, int, int]] = field(default_factory=dict)  # until, user, token
    checked: float = 0.0  # time.monotonic() of the last revocation check


_media_caches: dict[str, _MediaCache] = {}
_media_lock = threading.Lock()


def _forget_revoked(db: Database, cache: _MediaCache) -> None:
    """Drop the remembered cookies whose tokens were revoked or expired (by any process)."""
    with _media_lock:
        tokens = {token for _, _, token in cache.cookies.values()}
    if not tokens:
        return
    now = utcnow()
    with db.read() as s:
        live = {
            token_id
            for token_id, revoked_at, expires_at in s.execute(
                select(SessionToken.id, SessionToken.revoked_at, SessionToken.expires_at).where(
                    SessionToken.id.in_(tokens)
                )
            )
            if revoked_at is None and expires_at > now
        }
    gone = tokens - live
    if gone:
        with _media_lock:
            for cookie in [c for c, (_, _, token) in cache.cookies.items() if token in gone]:
                del cache.cookies[cookie]


@public("the media route: a browser's own session cookie is the credential")
def media_user(db: Database, cookie: str | None) -> int | None:
    """The user id behind a cookie, for serving images (remembered; revocations seen within ~1 s)."""
    if not cookie:
        return None
    now = time.monotonic()
    with _media_lock:
        cache = _media_caches.setdefault(db.url, _MediaCache())
        hit = cache.cookies.get(cookie)
        recheck = hit is not None and now - cache.checked > _MEDIA_RECHECK_S
        if recheck:
            cache.checked = now  # one thread asks; the others go on meanwhile
    if recheck:
        try:
            _forget_revoked(db, cache)
        except Exception:  # a busy database: forget everything rather than trust it blindly
            log.warning("could not check remembered sessions for revocation", exc_info=True)
            with _media_lock:
                cache.cookies.clear()
        with _media_lock:
            hit = cache.cookies.get(cookie)
    if hit is not None and hit[0] > now:
        return hit[1]
    restored = restore(db, cookie)
    if restored is None:
        return None
    with _media_lock:
        if len(cache.cookies) > 10_000:
            cache.cookies.clear()
        cache.cookies[cookie] = (now + _MEDIA_TTL_S, restored.actor.id, restored.token_id)
    return restored.actor.id
