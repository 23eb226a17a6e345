"""The consensus policy: how many annotators a query needs and how their votes combine.

``min=2,query=unanimous,positive=majority`` (any subset) is how a command line writes one;
``model=dawid_skene`` (or ``mace``) sets both rules to that model; ``shortcuts=drop`` drops the
queries one modality alone solves. See
:mod:`services.cleaning.consensus` for the rules and :mod:`services.cleaning.aggregation` for
the models, which weigh each annotator by an estimated competence instead of counting votes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from services.core.errors import ValidationError

UNANIMOUS = "unanimous"
MAJORITY = "majority"
ANY = "any"
DAWID_SKENE = "dawid_skene"
MACE = "mace"
MODEL_RULES = (DAWID_SKENE, MACE)
QUERY_RULES = (UNANIMOUS, MAJORITY, *MODEL_RULES)
POSITIVE_RULES = (MAJORITY, ANY, UNANIMOUS, *MODEL_RULES)
MAX_MIN_ANNOTATORS = 50
# Queries one modality alone solves (services.triage): kept as they are, or dropped from the export.
KEEP = "keep"
DROP = "drop"
SHORTCUT_RULES = (KEEP, DROP)
_POLICY_ALIASES = {
    "min": "min_annotators",
    "min_annotators": "min_annotators",
    "query": "query_rule",
    "query_rule": "query_rule",
    "positive": "positive_rule",
    "positives": "positive_rule",
    "positive_rule": "positive_rule",
    "model": "model",
    "aggregation": "model",
    "shortcut": "shortcuts",
    "shortcuts": "shortcuts",
}


@dataclass(frozen=True)
class Policy:
    """How annotators' work becomes the cleaned split.

    Attributes:
        min_annotators: a query with fewer completed annotations is dropped; 0 lets a query
            nobody annotated through with its original text and labels.
        query_rule: ``unanimous`` (no annotator rejected it), ``majority`` (more than half
            approved it), or a model (``dawid_skene``, ``mace``: kept when the model's
            probability that it is a good query is at least one half).
        positive_rule: ``majority``, ``any`` or ``unanimous`` of the approving annotators, or a
            model (positive when the model's probability of relevance is over one half).
        shortcuts: ``keep`` or ``drop`` the queries one modality alone solves (their stored
            modality shortcut is text, image or both; :mod:`services.triage.signals`).
    """

    min_annotators: int = 2
    query_rule: str = UNANIMOUS
    positive_rule: str = MAJORITY
    shortcuts: str = KEEP

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
        if self.shortcuts not in SHORTCUT_RULES:
            raise ValidationError(
                f"shortcuts rule {self.shortcuts!r} is unknown; choose {' or '.join(SHORTCUT_RULES)}"
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
                raise ValidationError(
                    f"unknown policy key {key!r}; use min, query, positive, model and shortcuts"
                )
            if name == "min_annotators":
                try:
                    values[name] = int(value)
                except ValueError as e:
                    raise ValidationError(f"min must be a whole number, got {value!r}") from e
            elif name == "model":
                if value.lower() not in MODEL_RULES:
                    raise ValidationError(f"model {value!r} is unknown; choose {' or '.join(MODEL_RULES)}")
                values.setdefault("query_rule", value.lower())
                values.setdefault("positive_rule", value.lower())
            else:
                values[name] = value.lower()
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The policy's fields; ``shortcuts`` only when it drops them, so a policy that keeps every
        query reads (and names its export folder) as it did before that rule existed."""
        values = asdict(self)
        if self.shortcuts == KEEP:
            del values["shortcuts"]
        return values

    @property
    def models(self) -> tuple[str, ...]:
        """The aggregation models this policy fits (none for counting rules alone)."""
        return tuple(dict.fromkeys(r for r in (self.positive_rule, self.query_rule) if r in MODEL_RULES))

    def __str__(self) -> str:
        text = f"min={self.min_annotators},query={self.query_rule},positive={self.positive_rule}"
        return text + (f",shortcuts={self.shortcuts}" if self.shortcuts != KEEP else "")
