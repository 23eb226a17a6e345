"""Stored values as people read them: labels, verdicts, reasons, disagreement kinds.

Pages and reports show these words, never the raw values (``not_relevant``) or ``None``.
"""

from __future__ import annotations

from db.enums import Label, RejectReason, Verdict

NONE = "—"
LABELS = {Label.RELEVANT: "Relevant", Label.NOT_RELEVANT: "Not relevant", Label.UNSURE: "Unsure"}
VERDICTS = {Verdict.ACCEPT: "Accepted", Verdict.REWRITE: "Rewrote", Verdict.REJECT: "Rejected"}
REASONS = {
    RejectReason.AMBIGUOUS: "Ambiguous",
    RejectReason.UNANSWERABLE: "Unanswerable",
    RejectReason.WRONG: "Wrong (positives do not match)",
    RejectReason.DUPLICATE: "Duplicate",
    RejectReason.OTHER: "Other",
}
QUEUE_ORDERS = {"shuffled": "shuffled (as imported)", "problems_first": "problems first"}
SHORTCUTS = {
    "neither": "needs both (as designed)",
    "text": "text alone solves it",
    "image": "image alone solves it",
    "both": "text or image alone solves it",
}
KINDS = {
    "verdict": "verdicts differ",
    "positive": "a labelled positive is disputed",
    "added": "an added positive is disputed",
    "flagged": "unsure or ambiguous",
}


def word(table: dict, value: object) -> str:
    """``value`` in words from ``table``; "—" for None, the value itself when the table lacks it."""
    if value is None:
        return NONE
    return table.get(value, str(value))
