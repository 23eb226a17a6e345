"""SQLAlchemy 2 typed models: the whole schema of Qrels Studio.

The schema only changes through Alembic migrations (``migrations/``); the app never calls
``create_all``. Every column type is portable between SQLite and PostgreSQL.

The words used for the domain's ideas are listed in :mod:`db` (``db/__init__.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.enums import (
    AssignmentStatus,
    ImageStatus,
    JobStatus,
    Label,
    Provenance,
    RejectReason,
    RevisionKind,
    Role,
    RunKind,
    Verdict,
)
from db.types import UTCDateTime, enum_type

# Explicit constraint names keep Alembic's batch mode (SQLite) and PostgreSQL in step.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now, the one clock every row uses."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(enum_type(Role, 16))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    source_format: Mapped[str] = mapped_column(String(32), default="native")
    source_path: Mapped[str | None] = mapped_column(Text)
    # Annotation guidelines, Markdown written by an admin.
    guidelines: Mapped[str] = mapped_column(Text, default="")
    # Per-dataset settings: candidate depth k, show scores/rank order, overlap, ...
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # The generation of ranker runs readers see (services/ranking/generations.py); a re-rank
    # writes the next one beside it and switches this in one short transaction.
    active_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when the dataset is deleted: it leaves every list at once, its rows go in short batches
    # (services/datasets/deletion.py), and a crashed delete resumes from here.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("dataset_id", "ext_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    # The id the benchmark uses; ``id`` is ours.
    ext_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(128), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The reference as written in the bundle (relative path or URL), kept for re-export.
    image_ref: Mapped[str | None] = mapped_column(Text)
    image_status: Mapped[ImageStatus] = mapped_column(enum_type(ImageStatus, 16), default=ImageStatus.MISSING)
    # SHA-256 of the image bytes: the key of the media store and of stored embeddings.
    image_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    image_ext: Mapped[str | None] = mapped_column(String(8))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)


class Query(Base):
    __tablename__ = "queries"
    __table_args__ = (UniqueConstraint("dataset_id", "ext_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    ext_id: Mapped[str] = mapped_column(String(255))
    # The text as imported; the text shown now is the latest revision (see QueryRevision).
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(128), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    # Who wrote it (``generated``, ``human``, ...), and the group of variants for one target.
    source: Mapped[str | None] = mapped_column(String(32))
    group_key: Mapped[str | None] = mapped_column(String(255), index=True)
    # A user who wrote the query, when known (a rater never rates their own query).
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # Format-specific fields kept for re-export (e.g. CIRCO shared_concept, CIRR img_set).
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)

    refs: Mapped[list[QueryRef]] = relationship(
        back_populates="query", cascade="all, delete-orphan", order_by="QueryRef.position"
    )


class QueryRef(Base):
    """A reference of a composed/interleaved query: an item of the pool or an image of its own."""

    __tablename__ = "query_refs"
    __table_args__ = (UniqueConstraint("query_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    image_ref: Mapped[str | None] = mapped_column(Text)
    image_status: Mapped[ImageStatus] = mapped_column(enum_type(ImageStatus, 16), default=ImageStatus.MISSING)
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    image_ext: Mapped[str | None] = mapped_column(String(8))

    query: Mapped[Query] = relationship(back_populates="refs")
    # The referenced pool item, loaded with the refs (``selectinload``) instead of one query per ref.
    item: Mapped[Item | None] = relationship()


class QueryRevision(Base):
    """Every text a query has had: the original (author null) and each rewrite, never deleted."""

    __tablename__ = "query_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[RevisionKind] = mapped_column(enum_type(RevisionKind, 16))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Qrel(Base):
    """An original relevance label, as imported. Never changed by annotation."""

    __tablename__ = "qrels"
    __table_args__ = (UniqueConstraint("query_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    score: Mapped[int] = mapped_column(Integer)


class RankerRun(Base):
    """One ranking of a dataset's pool: a ranker's output, the pooled fusion, or an imported run."""

    __tablename__ = "ranker_runs"
    __table_args__ = (UniqueConstraint("dataset_id", "name", "generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[RunKind] = mapped_column(enum_type(RunKind, 16))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Readers see only the dataset's ``active_generation`` (services/ranking/generations.py).
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Candidate(Base):
    """One ranked item of a run for a query; ``rankers`` keeps each ranker's rank and score."""

    __tablename__ = "candidates"
    __table_args__ = (
        UniqueConstraint("run_id", "query_id", "item_id"),
        Index("ix_candidates_run_query_rank", "run_id", "query_id", "rank"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ranker_runs.id", ondelete="CASCADE"))
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    # {ranker name: {"rank": int, "score": float}} for pooled runs; {} for single rankers.
    rankers: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Job(Base):
    """A batch job (embed, rank, import) started from the CLI or an admin page, with progress."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    status: Mapped[JobStatus] = mapped_column(enum_type(JobStatus, 16), default=JobStatus.QUEUED)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Touched every few seconds while the job's process lives; a stale one means it died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Assignment(Base):
    """A query in an annotator's queue. At most one per (query, annotator)."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("query_id", "user_id"),
        Index("ix_assignments_user_status", "user_id", "status", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[AssignmentStatus] = mapped_column(
        enum_type(AssignmentStatus, 16), default=AssignmentStatus.PENDING
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    skips: Mapped[int] = mapped_column(Integer, default=0)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Submission(Base):
    """One submit of a query by an annotator: the unit of undo and of time on task.

    ``client_token`` is unique so a retried submit (network error, double click) is stored once.
    """

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    client_token: Mapped[str] = mapped_column(String(64), unique=True)
    time_on_task_ms: Mapped[int] = mapped_column(Integer, default=0)
    # The state before this submit, so undo can restore it exactly.
    previous_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Draft(Base):
    """Unsaved work on one assignment, kept while the annotator works (restored after a reload).

    ``work`` is what the page would submit (labels, added items, verdict, note, rewrite); ``seq``
    is the page's own counter, so a late write of an older draft never replaces a newer one.
    """

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), unique=True)
    work: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Judgment(Base):
    """An annotator's label for one item of one query. One per (user, query, item)."""

    __tablename__ = "judgments"
    __table_args__ = (
        UniqueConstraint("user_id", "query_id", "item_id"),
        Index("ix_judgments_query_item", "query_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    label: Mapped[Label] = mapped_column(enum_type(Label, 16))
    provenance: Mapped[Provenance] = mapped_column(enum_type(Provenance, 16))
    # candidate: {"rankers": {name: {"rank", "score"}}}; search: {"text": ..., "mode": ...}.
    provenance_detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    position_shown: Mapped[int | None] = mapped_column(Integer)
    shuffle_seed: Mapped[int | None] = mapped_column(BigInteger)
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JudgmentHistory(Base):
    """The previous value of a judgment each time it changes."""

    __tablename__ = "judgment_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    judgment_id: Mapped[int] = mapped_column(ForeignKey("judgments.id", ondelete="CASCADE"), index=True)
    label: Mapped[Label] = mapped_column(enum_type(Label, 16))
    provenance: Mapped[Provenance] = mapped_column(enum_type(Provenance, 16))
    provenance_detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    position_shown: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QueryVerdict(Base):
    """An annotator's decision on a query. One per (user, query)."""

    __tablename__ = "query_verdicts"
    __table_args__ = (UniqueConstraint("user_id", "query_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[Verdict] = mapped_column(enum_type(Verdict, 16))
    reason: Mapped[RejectReason | None] = mapped_column(enum_type(RejectReason, 32))
    note: Mapped[str] = mapped_column(Text, default="")
    revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("query_revisions.id", ondelete="SET NULL"), index=True
    )
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ItemAdjudication(Base):
    """A reviewer's final label for one item of a disputed query (the newest per query and item wins)."""

    __tablename__ = "item_adjudications"
    __table_args__ = (Index("ix_item_adjudications_query_item", "query_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    label: Mapped[Label] = mapped_column(enum_type(Label, 16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QueryAdjudication(Base):
    """A reviewer's final verdict on a disputed query (the newest per query wins)."""

    __tablename__ = "query_adjudications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    verdict: Mapped[Verdict] = mapped_column(enum_type(Verdict, 16))
    reason: Mapped[RejectReason | None] = mapped_column(enum_type(RejectReason, 32))
    # The text a ``rewrite`` verdict keeps: an annotator's rewrite or the reviewer's own.
    revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("query_revisions.id", ondelete="SET NULL"), index=True
    )
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Export(Base):
    """A cleaned test split written to disk, with its options and manifest."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    out_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
