"""Gold queries: a query whose correct answer is known, mixed into annotators' queues to score them.

A gold query holds the expected verdict (``accept`` or ``reject``) and, per item, the correct
label (relevant / not relevant). Annotators never see that a query is gold; their work on it is
scored against the answer (:mod:`services.gold.scoring`) and never counts toward the export's
consensus, where a gold query's decision is its gold answer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.enums import GoldOrigin, Label, RejectReason, Verdict
from db.models import Base, utcnow
from db.types import UTCDateTime, enum_type


class GoldQuery(Base):
    """The gold answer of one query: its expected verdict, where it came from, who set it."""

    __tablename__ = "gold_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), unique=True)
    verdict: Mapped[Verdict] = mapped_column(enum_type(Verdict, 16))
    reason: Mapped[RejectReason | None] = mapped_column(enum_type(RejectReason, 32))
    origin: Mapped[GoldOrigin] = mapped_column(enum_type(GoldOrigin, 16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    items: Mapped[list[GoldItem]] = relationship(
        back_populates="gold", cascade="all, delete-orphan", order_by="GoldItem.item_id"
    )


class GoldItem(Base):
    """The correct label of one item for a gold query (relevant or not relevant)."""

    __tablename__ = "gold_items"
    __table_args__ = (UniqueConstraint("gold_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gold_id: Mapped[int] = mapped_column(ForeignKey("gold_queries.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    label: Mapped[Label] = mapped_column(enum_type(Label, 16))

    gold: Mapped[GoldQuery] = relationship(back_populates="items")
