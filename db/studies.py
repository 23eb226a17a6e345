"""Blind rating studies: the study, its trials, who rates which, and their answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.enums import StudyKind, StudyStatus
from db.models import Base, utcnow
from db.types import UTCDateTime, enum_type


class Study(Base):
    """A blind study: ``query_quality`` (score A and B, prefer one) or ``system_preference``."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[StudyKind] = mapped_column(enum_type(StudyKind, 32))
    status: Mapped[StudyStatus] = mapped_column(enum_type(StudyStatus, 16), default=StudyStatus.OPEN)
    seed: Mapped[int] = mapped_column(BigInteger, default=0)
    # Sources compared, rubric criteria with anchors, top-n, systems, ...
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StudyTrial(Base):
    """One thing raters rate: a target with its query variants, or a query with systems' results."""

    __tablename__ = "study_trials"
    __table_args__ = (UniqueConstraint("study_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    group_key: Mapped[str | None] = mapped_column(String(255))
    query_id: Mapped[int | None] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    # Unblinded content (query ids per source, options per system): never sent to a rater page.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)

    study: Mapped[Study] = relationship()


class StudyAssignment(Base):
    """A study trial given to a rater, with the blinded order it is shown in."""

    __tablename__ = "study_assignments"
    __table_args__ = (UniqueConstraint("trial_id", "rater_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("study_trials.id", ondelete="CASCADE"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Display label -> source or system, e.g. {"A": "human", "B": "generated"}.
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)

    trial: Mapped[StudyTrial] = relationship()


class StudyResponse(Base):
    """A rater's answer; at most one per assignment."""

    __tablename__ = "study_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("study_assignments.id", ondelete="CASCADE"), unique=True
    )
    # {criterion: {"A": int, "B": int}} for query quality; {} for system preference.
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    preference: Mapped[str | None] = mapped_column(String(32))  # A | B | tie | option label
    # The mapping as shown, stored again with the answer so the answer is self-describing.
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
