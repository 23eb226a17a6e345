"""Scoring triage against the demo's planted truth (``truth.jsonl``).

- :func:`front_shares`: the share of planted problems of each kind — false negatives and wrong
  positives (counted per item) and bad queries (per query) — that sit in the first ``fraction`` of a
  queue. A queue in no particular order holds about ``fraction`` of each; no order can hold more of a kind
  than :func:`front_ceiling` (the first 20 % of a queue has room for only so many queries).
- :func:`modality_scores`: precision and recall of the stored modality-shortcut flags (any flag
  but ``neither``) against the queries one modality alone answers (``single_modality``), overall
  and per modality.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROBLEM_KINDS = ("false_negative", "wrong_positive", "bad_query")


def load_truth(path: Path) -> dict[str, dict[str, Any]]:
    """truth.jsonl as query id -> its line."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {row["query_id"]: row for row in map(json.loads, lines) if "query_id" in row}  # copies have none


def problems(line: Mapping[str, Any]) -> dict[str, int]:
    """Planted problems of one query by kind (a bad query's near misses count as the bad query)."""
    return {
        "false_negative": len(line["false_negatives"]),
        "wrong_positive": 0 if line["bad"] else len(line["wrong_positives"]),
        "bad_query": 1 if line["bad"] else 0,
    }


def _front(order: Sequence[str], fraction: float) -> list[str]:
    return list(order[: round(fraction * len(order))])


def front_shares(
    order: Sequence[str], truth: Mapping[str, Mapping[str, Any]], fraction: float = 0.2
) -> dict[str, float]:
    """Per problem kind (and ``all``), the share of the planted ones in the first ``fraction`` of
    ``order`` (query ids); a kind with nothing planted reads 0."""
    totals = {kind: 0 for kind in PROBLEM_KINDS}
    for line in truth.values():
        for kind, n in problems(line).items():
            totals[kind] += n
    front = {kind: 0 for kind in PROBLEM_KINDS}
    for qid in _front(order, fraction):
        for kind, n in problems(truth[qid]).items():
            front[kind] += n
    shares = {kind: front[kind] / totals[kind] if totals[kind] else 0.0 for kind in PROBLEM_KINDS}
    shares["all"] = sum(front.values()) / max(sum(totals.values()), 1)
    return shares


def front_ceiling(truth: Mapping[str, Mapping[str, Any]], fraction: float = 0.2) -> dict[str, float]:
    """The most any queue can hold in its first ``fraction``, per kind: an oracle queue with the
    queries holding the most planted problems of that kind (for ``all``: of any kind) first."""
    ceiling = {}
    for kind in (*PROBLEM_KINDS, "all"):

        def planted(q: str, kind: str = kind) -> int:
            counts = problems(truth[q])
            return sum(counts.values()) if kind == "all" else counts[kind]

        order = sorted(truth, key=lambda q: (-planted(q), q))
        ceiling[kind] = front_shares(order, truth, fraction)[kind]
    return ceiling


def modality_scores(flags: Mapping[str, str], truth: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Precision and recall of the modality flags (query id -> text|image|both|neither) against the
    truth's ``single_modality``; ``image`` and ``text`` score each modality (``both`` counts for each)."""

    def score(flagged: set[str], planted: set[str]) -> dict[str, Any]:
        hit = len(flagged & planted)
        return {
            "precision": hit / len(flagged) if flagged else None,
            "recall": hit / len(planted) if planted else None,
            "flagged": len(flagged),
            "planted": len(planted),
        }

    def with_modality(values: Mapping[str, Any], modality: str | None) -> set[str]:
        if modality is None:
            return {q for q, v in values.items() if v not in (None, "neither")}
        return {q for q, v in values.items() if v in (modality, "both")}

    planted = {q: line.get("single_modality") for q, line in truth.items()}
    flags = {q: v for q, v in flags.items() if q in truth}
    return {
        name: score(with_modality(flags, modality), with_modality(planted, modality))
        for name, modality in (("any", None), ("image", "image"), ("text", "text"))
    }
