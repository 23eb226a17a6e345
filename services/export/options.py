"""What an export writes and how: the formats, the policy, the sample, the manifest's time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.hashing import sha256_bytes
from services.cleaning.policy import Policy
from services.cleaning.sampling import STRATIFY_FIELDS
from services.core.errors import ValidationError
from services.export.folder import to_json

NATIVE, BEIR, TREC, MBEIR, CSV, PARQUET = "native", "beir", "trec", "mbeir", "csv", "parquet"
# What an export does with copies of positives (services/export/duplicates.py).
DUPLICATE_OPTIONS = ("leave", "add", "collapse")
FORMATS = (NATIVE, BEIR, TREC, MBEIR, CSV, PARQUET)
# M-BEIR numbers its datasets 0-9 (VisualNews ... MSCOCO); a new one takes the next free id.
DEFAULT_MBEIR_DATASET_ID = 10


def utc_time(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_time(value: datetime) -> str:
    return utc_time(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how.

    Attributes:
        formats: any of :data:`FORMATS`; written in that order whatever order is given.
        policy: the consensus policy.
        size: a target number of queries for a stratified sample of the kept ones (None: all).
        stratify: query fields to stratify the sample over (``category``, ``language``, ``source``).
        seed: the sample's seed.
        timestamp: the manifest's time; None takes the newest decision in the dataset.
        mbeir_dataset_id: the ``N`` of M-BEIR ids ``"N:n"``.
        duplicates: what to do with copies of positives in the pool: ``leave`` (report them),
            ``add`` (as positives) or ``collapse`` (one item per duplicate group); see
            :mod:`services.export.duplicates`.
    """

    formats: tuple[str, ...] = FORMATS
    policy: Policy = field(default_factory=Policy)
    size: int | None = None
    stratify: tuple[str, ...] = ()
    seed: int = 0
    timestamp: datetime | None = None
    mbeir_dataset_id: int = DEFAULT_MBEIR_DATASET_ID
    duplicates: str = "leave"

    def __post_init__(self) -> None:
        formats = [f.strip().lower() for f in self.formats if f.strip()]
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown:
            raise ValidationError(f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
        if not formats:
            raise ValidationError(f"choose at least one format: {', '.join(FORMATS)}")
        object.__setattr__(self, "formats", tuple(f for f in FORMATS if f in formats))
        if self.size is not None and (isinstance(self.size, bool) or self.size < 1):
            raise ValidationError(f"the sample size must be at least 1, got {self.size}")
        stratify = tuple(dict.fromkeys(s.strip() for s in self.stratify if s.strip()))
        object.__setattr__(self, "stratify", stratify)
        if stratify and self.size is None:
            raise ValidationError("stratifying needs a sample size; give --size N with --stratify")
        unknown = [f for f in stratify if f not in STRATIFY_FIELDS]
        if unknown:
            raise ValidationError(
                f"cannot stratify over {', '.join(unknown)}; choose from {', '.join(STRATIFY_FIELDS)}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValidationError(f"the seed must be a whole number, got {self.seed!r}")
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", utc_time(self.timestamp))
        if not isinstance(self.mbeir_dataset_id, int) or self.mbeir_dataset_id < 0:
            raise ValidationError("the M-BEIR dataset id must be a whole number of at least 0")
        if self.duplicates not in DUPLICATE_OPTIONS:
            raise ValidationError(
                f"copies of positives: choose {', '.join(DUPLICATE_OPTIONS)}, not {self.duplicates!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "formats": list(self.formats),
            "policy": self.policy.as_dict(),
            "size": self.size,
            "stratify": list(self.stratify),
            "seed": self.seed,
            "timestamp": format_time(self.timestamp) if self.timestamp else None,
            "mbeir_dataset_id": self.mbeir_dataset_id,
            "duplicates": self.duplicates,
        }

    def digest(self) -> str:
        """A short hash of the options (names an export folder)."""
        return sha256_bytes(to_json(self.as_dict()).encode())[:8]


def parse_options(
    *,
    formats: str = ",".join(FORMATS),
    policy: str = "",
    size: int | None = None,
    stratify: str = "",
    seed: int = 0,
    time: str | None = None,
    duplicates: str = "leave",
) -> ExportOptions:
    """Options from the strings a command line gives (comma-separated lists, ISO time).

    Raises:
        ValidationError: any value that is not allowed; the message says which and why.
    """
    timestamp = None
    if time:
        try:
            timestamp = datetime.fromisoformat(time.strip().replace("Z", "+00:00"))
        except ValueError as e:
            raise ValidationError(f"time {time!r} is not an ISO 8601 time like 2026-01-31T12:00:00Z") from e
    return ExportOptions(
        formats=tuple(f for f in formats.split(",") if f.strip()),
        policy=Policy.parse(policy),
        size=size,
        stratify=tuple(s for s in stratify.split(",") if s.strip()),
        seed=seed,
        timestamp=timestamp,
        duplicates=duplicates.strip().lower(),
    )
