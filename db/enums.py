"""The enumerated values the database stores, one StrEnum each.

Each is mapped to its column with a CHECK constraint (``db.types.enum_column``), so the database
refuses a value the code would not write. A member *is* its string (``Label.RELEVANT ==
"relevant"``), so JSON, CSV and the pages see plain values.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a user may do. A rater is any user chosen for a study, so it is not a role."""

    ADMIN = "admin"
    REVIEWER = "reviewer"
    ANNOTATOR = "annotator"


class Label(StrEnum):
    """An annotator's label for one item of one query."""

    RELEVANT = "relevant"
    NOT_RELEVANT = "not_relevant"
    UNSURE = "unsure"


class Provenance(StrEnum):
    """How a judged item reached the annotator."""

    ORIGINAL = "original"  # a labelled positive of the benchmark
    CANDIDATE = "candidate"  # the ranked candidate grid
    SEARCH = "search"  # pool search (text or "more like this")
    DUPLICATE = "duplicate"  # the same label as a copy the annotator judged (detail: which)


class Verdict(StrEnum):
    """An annotator's (or a reviewer's) decision on the query itself."""

    ACCEPT = "accept"
    REJECT = "reject"
    REWRITE = "rewrite"


class RejectReason(StrEnum):
    AMBIGUOUS = "ambiguous"
    UNANSWERABLE = "unanswerable"
    WRONG = "wrong"
    DUPLICATE = "duplicate"
    OTHER = "other"


class AssignmentStatus(StrEnum):
    PENDING = "pending"
    SKIPPED = "skipped"
    DONE = "done"


class RevisionKind(StrEnum):
    """Where a query text came from: the import, an annotator's rewrite, a reviewer's edit."""

    ORIGINAL = "original"
    REWRITE = "rewrite"
    ADJUDICATED = "adjudicated"


class GoldOrigin(StrEnum):
    """Where a gold query's answer came from."""

    PLANTED = "planted"  # the demo generator's planted truth
    ADJUDICATION = "adjudication"  # a reviewer's adjudication, promoted to gold
    IMPORTED = "imported"  # a gold file brought in beside the bundle


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RunKind(StrEnum):
    """A ranker's own run, the pooled fusion of them, or a run file brought in from outside."""

    RANKER = "ranker"
    POOLED = "pooled"
    IMPORTED = "imported"


class ImageStatus(StrEnum):
    """Whether an item's (or a query reference's) image is stored here."""

    OK = "ok"
    MISSING = "missing"
    REMOTE = "remote"  # an http(s) URL kept as a reference, never fetched


class DuplicateEvidence(StrEnum):
    """How an item joined its duplicate group."""

    REPRESENTATIVE = "representative"  # the member the others are copies of (imported first)
    EXACT = "exact"  # the same image bytes (the same content hash)
    NEAR = "near"  # a re-encoded, resized or slightly cropped copy


class StudyKind(StrEnum):
    QUERY_QUALITY = "query_quality"
    SYSTEM_PREFERENCE = "system_preference"


class StudyStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Shortcut(StrEnum):
    """Which single modality alone finds every labelled positive of a query (MCMR's dual evidence
    asks for ``neither``): :mod:`services.triage.signals` says how it is measured."""

    TEXT = "text"
    IMAGE = "image"
    BOTH = "both"
    NEITHER = "neither"
