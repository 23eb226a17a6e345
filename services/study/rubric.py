"""The rubric of a query-quality study, and what raters may not read.

A rater scores each of the two queries of a trial on the study's rubric: one to
:data:`MAX_CRITERIA` criteria, each scored on :data:`SCALE` (1-5) with a short anchor text for
every point. The study name and the rubric are shown to raters, so they may not name a compared
source or system (:func:`check_blind`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.core.errors import ValidationError

SCALE = (1, 2, 3, 4, 5)
MAX_CRITERIA = 3
CRITERION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,39}$")


@dataclass(frozen=True)
class Criterion:
    """One thing raters score 1-5, with a short anchor text for each point of the scale."""

    name: str
    question: str
    anchors: tuple[str, ...]


DEFAULT_RUBRIC: tuple[Criterion, ...] = (
    Criterion(
        "overall",
        "How good is this query for finding the target?",
        (
            "Unusable: does not describe the target, or cannot be understood.",
            "Poor: describes the target only vaguely, or gets a detail wrong.",
            "Fair: fits the target, but is unclear or misses an important detail.",
            "Good: clear and fits the target, with small flaws.",
            "Excellent: clear, specific and fluent; it asks for exactly the target.",
        ),
    ),
)


def check_rubric(criteria: Sequence[Criterion], *, forbidden: Sequence[str] = ()) -> tuple[Criterion, ...]:
    """Validate a rubric: 1-3 criteria, each with a name, a question and five anchors.

    Args:
        criteria: the criteria, in the order raters see them.
        forbidden: words raters must not see (the compared sources): no text may contain one.

    Raises:
        ValidationError: what is wrong, and with which criterion.
    """
    criteria = tuple(criteria)
    if not 1 <= len(criteria) <= MAX_CRITERIA:
        raise ValidationError(f"a rubric has 1 to {MAX_CRITERIA} criteria, not {len(criteria)}")
    names = [c.name for c in criteria]
    if len(set(names)) != len(names):
        raise ValidationError("two criteria have the same name")
    checked = []
    for c in criteria:
        name = (c.name or "").strip()
        if not CRITERION_RE.match(name):
            raise ValidationError(
                f"criterion name {c.name!r}: 1-40 letters, digits, spaces, '_' or '-', starting with a letter or digit"
            )
        question = (c.question or "").strip() or f"Score the query on {name}."
        anchors = tuple((a or "").strip() for a in c.anchors)
        if len(anchors) != len(SCALE) or not all(anchors):
            raise ValidationError(f"criterion {name!r} needs one anchor text for each score 1-5")
        if len(question) > 300 or any(len(a) > 200 for a in anchors):
            raise ValidationError(f"criterion {name!r}: question up to 300 characters, anchors up to 200")
        check_blind(" ".join((name, question, *anchors)), forbidden, f"criterion {name!r}")
        checked.append(Criterion(name, question, anchors))
    return tuple(checked)


def rubric_from_json(data: Any) -> tuple[Criterion, ...]:
    """A rubric from JSON: ``[{"name": ..., "question": ..., "anchors": [five texts]}, ...]``."""
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ValidationError('a rubric is a JSON list of {"name", "question", "anchors": [5 texts]}')
    try:
        return tuple(
            Criterion(str(c["name"]), str(c.get("question", "")), tuple(str(a) for a in c["anchors"]))
            for c in data
        )
    except (KeyError, TypeError) as e:
        raise ValidationError(f"a rubric criterion lacks {e}; each needs a name and five anchors") from e


def rubric_config(criteria: Sequence[Criterion]) -> list[dict[str, Any]]:
    """The rubric as it is stored in ``Study.config["rubric"]``."""
    return [{"name": c.name, "question": c.question, "anchors": list(c.anchors)} for c in criteria]


def rubric_of(config: Mapping[str, Any]) -> tuple[Criterion, ...]:
    """The rubric stored in a study's config (empty for a system-preference study)."""
    return tuple(Criterion(c["name"], c["question"], tuple(c["anchors"])) for c in config.get("rubric", []))


def check_blind(text: str, forbidden: Sequence[str], what: str) -> None:
    """Refuse a text shown to raters that names a compared source or system.

    Raises:
        ValidationError: ``what`` names one of ``forbidden`` (case-insensitive).
    """
    lowered = text.lower()
    for word in forbidden:
        if word and word.lower() in lowered:
            raise ValidationError(f"{what} is shown to raters and may not name {word!r}")
