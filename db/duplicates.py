"""Near-duplicates in the pool: image signatures, and the groups of items whose images are copies.

An image's signature (a 64-bit perceptual hash and a 16×16 colour layout, made from its
thumbnail) is computed once per image content (``image_signatures``, keyed by the SHA-256 of the
media store), whatever dataset holds it. A dataset's duplicate groups are recomputed by the
ranking job after embedding (:mod:`services.duplicates`): every group lists its members, each
with the evidence that joined it (an exact byte copy, or a near copy with its hash distance,
CLIP cosine and pixel difference) and the member it was matched to.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.enums import DuplicateEvidence
from db.models import Base, utcnow
from db.types import UTCDateTime, enum_type


class ImageSignature(Base):
    """What near-copy search needs of one image, computed once from its thumbnail."""

    __tablename__ = "image_signatures"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The signature's recipe; a signature of another version is computed again.
    version: Mapped[int] = mapped_column(Integer)
    # imagehash.phash of the thumbnail, 64 bits as 16 hex digits.
    phash: Mapped[str] = mapped_column(String(16))
    # The thumbnail averaged down to 16×16 RGB, uint8 row-major (768 bytes).
    layout: Mapped[bytes] = mapped_column(LargeBinary)


class DuplicateGroup(Base):
    """Items of one dataset whose images are copies of one another."""

    __tablename__ = "duplicate_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    # The member kept when an export collapses the group: the one imported first.
    representative_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    members: Mapped[list[DuplicateMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan", order_by="DuplicateMember.item_id"
    )


class DuplicateMember(Base):
    """One item of a group, and how it was matched (the representative has no match)."""

    __tablename__ = "duplicate_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("duplicate_groups.id", ondelete="CASCADE"), index=True)
    # An item is in at most one group.
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    evidence: Mapped[DuplicateEvidence] = mapped_column(enum_type(DuplicateEvidence, 16))
    matched_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    hamming: Mapped[int | None] = mapped_column(Integer)
    cosine: Mapped[float | None] = mapped_column(Float)
    pixels: Mapped[float | None] = mapped_column(Float)  # mean colour difference after alignment, 0-255

    group: Mapped[DuplicateGroup] = relationship(back_populates="members")
