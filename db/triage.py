"""Triage of a dataset's queries, computed when ranking finishes: how suspicious each query looks,
and whether one modality alone answers it.

One row per query, replaced whenever the dataset is ranked again (or triaged again from the CLI).
What the numbers mean is documented in :mod:`services.triage.signals`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from db.enums import Shortcut
from db.models import Base, utcnow
from db.types import UTCDateTime, enum_type


class QueryTriage(Base):
    """A query's suspicion score (0–1, with the signals it is made of) and its modality shortcut."""

    __tablename__ = "query_triage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), unique=True)
    suspicion: Mapped[float] = mapped_column(Float)
    # {"false_negative", "wrong_positive", "bad_query", "disagreement"}: each in [0, 1].
    signals: Mapped[dict[str, Any]] = mapped_column(default=dict)
    shortcut: Mapped[Shortcut] = mapped_column(enum_type(Shortcut, 16))
    # The rank r the shortcut was measured at (the dataset's ``modality_rank`` then).
    shortcut_rank: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
