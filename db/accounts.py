"""Browser sessions that survive a reload: signed, expiring, revocable tokens, and the secret that signs them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, utcnow
from db.types import UTCDateTime


class SessionToken(Base):
    """One browser's login, kept in an HttpOnly cookie so a reload does not ask for the password.

    The cookie holds the token (signed with :class:`AppSecret` ``session``); the database keeps only
    its SHA-256, so a copy of the database cannot log anyone in. A row starts as a one-time
    ``claim`` (handed to the page over its websocket, exchanged once for the cookie), then holds
    the token until it expires, idles out, is rotated or is revoked (log out, deactivation).
    """

    __tablename__ = "session_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    claim_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The token this one rotates out: it stays valid a few seconds after this one is claimed, so
    # a second tab that reloads at the same moment is not logged out.
    replaces_id: Mapped[int | None] = mapped_column(
        ForeignKey("session_tokens.id", ondelete="SET NULL"), index=True
    )


class AppSecret(Base):
    """A random secret of this installation (shared by every app process through the database)."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
