"""Who looked behind the blind: every time an admin revealed the annotators' names of a review case."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, utcnow
from db.types import UTCDateTime


class NameReveal(Base):
    """An admin revealed which annotator is A, B, C, … on one review case (a query)."""

    __tablename__ = "name_reveals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    # The row stays when the admin's account is deleted (the reveal happened); the name is kept too,
    # and says "cli" for the command line's operator.
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    admin_name: Mapped[str] = mapped_column(String(64))
    revealed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
