"""The consensus policy: how many annotators a query needs and how their votes combine.

``min=2,query=unanimous,positive=majority`` (any subset) is how a command line writes one; see
:mod:`services.cleaning.consensus` for the rules it selects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from services.core.errors import ValidationError

UNANIMOUS = "unanimous"
MAJORITY = "majority"
ANY = "any"
QUERY_RULES = (UNANIMOUS, MAJORITY)
POSITIVE_RULES = (MAJORITY, ANY, UNANIMOUS)
MAX_MIN_ANNOTATORS = 50
_POLICY_ALIASES = {
    "min": "min_annotators",
    "min_annotators": "min_annotators",
    "query": "query_rule",
    "query_rule": "query_rule",
    "positive": "positive_rule",
    "positives": "positive_rule",
    "positive_rule": "positive_rule",
}


@dataclass(frozen=True)
class Policy:
    """How annotators' work becomes the cleaned split.

    Attributes:
        min_annotators: a query with fewer completed annotations is dropped; 0 lets a query
            nobody annotated through with its original text and labels.
        query_rule: ``unanimous`` (no annotator rejected it) or ``majority`` (more than half
            approved it).
        positive_rule: ``majority``, ``any`` or ``unanimous`` of the approving annotators.
    """

    min_annotators: int = 2
    query_rule: str = UNANIMOUS
    positive_rule: str = MAJORITY

    def __post_init__(self) -> None:
        if (
            isinstance(self.min_annotators, bool)
            or not isinstance(self.min_annotators, int)
            or not 0 <= self.min_annotators <= MAX_MIN_ANNOTATORS
        ):
            raise ValidationError(
                f"min_annotators must be a whole number from 0 to {MAX_MIN_ANNOTATORS}, "
                f"got {self.min_annotators!r}"
            )
        if self.query_rule not in QUERY_RULES:
            raise ValidationError(
                f"query rule {self.query_rule!r} is unknown; choose {' or '.join(QUERY_RULES)}"
            )
        if self.positive_rule not in POSITIVE_RULES:
            raise ValidationError(
                f"positive rule {self.positive_rule!r} is unknown; choose one of {', '.join(POSITIVE_RULES)}"
            )

    @classmethod
    def parse(cls, text: str) -> Policy:
        """Read ``min=2,query=unanimous,positive=majority`` (any subset; empty: the defaults).

        Raises:
            ValidationError: an unknown key, a value that is not allowed, or a malformed part.
        """
        values: dict[str, Any] = {}
        for part in (text or "").split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not value:
                raise ValidationError(
                    f"policy part {part.strip()!r} is not key=value; write e.g. min=2,query=unanimous,positive=majority"
                )
            name = _POLICY_ALIASES.get(key)
            if name is None:
                raise ValidationError(f"unknown policy key {key!r}; use min, query and positive")
            if name == "min_annotators":
                try:
                    values[name] = int(value)
                except ValueError as e:
                    raise ValidationError(f"min must be a whole number, got {value!r}") from e
            else:
                values[name] = value.lower()
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"min={self.min_annotators},query={self.query_rule},positive={self.positive_rule}"
