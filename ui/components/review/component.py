"""The review page's judging surface: a custom component (v2: HTML/CSS/JS in the page, no iframe).

:func:`case_data` turns a :class:`~services.review.disputes.ReviewCase` into what the component
draws (anonymous letters only, words instead of stored values, image URLs from :mod:`ui.media`);
:func:`review_surface` mounts it. The component sends one trigger per intention: ``save`` (the
decisions, as :func:`services.review.adjudication.adjudicate` takes them), ``nav`` ("prev" or
"next") and ``zoom`` (an item id whose original has no URL, for ``st.image``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from db.enums import Label, Verdict
from services.agreement.votes import KIND_ADDED, KIND_POSITIVE, KINDS
from services.review.disputes import ReviewCase
from ui.media import full_url, thumb_url
from ui.words import KINDS as KIND_WORDS
from ui.words import LABELS, REASONS, VERDICTS, word

HERE = Path(__file__).parent
_component = st.components.v2.component(
    "qrels_review",
    css=(HERE / "review.css").read_text(encoding="utf-8"),
    js=(HERE / "review.js").read_text(encoding="utf-8"),
)
LEFT_UNTICKED = "approved the query and left it unticked"


def _vote_note(label: str | None, provenance: str | None, verdict: str) -> str:
    """Why a vote reads as it does: a label counted without a mark, or one given while rejecting."""
    if label is not None and provenance is None:
        return LEFT_UNTICKED
    return "rejected the query" if verdict == Verdict.REJECT else ""


def _decided(case: ReviewCase) -> dict[str, Any] | None:
    if case.decision == Verdict.REJECT:
        return {"kind": "reject", "reason": case.decision_reason}
    if case.decision == Verdict.REWRITE and case.decision_revision_id is not None:
        return {"kind": "rewrite", "revision_id": case.decision_revision_id}
    if case.decision == Verdict.ACCEPT:
        return {"kind": "original"}
    return None


def case_data(
    case: ReviewCase, *, position: str, nonce: int, message: dict[str, str] | None = None
) -> dict[str, Any]:
    """What the component draws for ``case``: JSON-ready, with no annotator name in it."""
    items = []
    for item in case.items:
        card = item.card
        role = "labelled positive" if item.original_positive else "added by an annotator"
        why = [KIND_WORDS[k] for k in item.kinds if k not in (KIND_POSITIVE, KIND_ADDED)]
        items.append(
            {
                "item_id": card.item_id,
                "ext_id": card.ext_id,
                "title": card.title or card.ext_id,
                "text": card.text,
                "thumb_url": thumb_url(card),
                "full_url": full_url(card),
                "has_image": card.original is not None,
                "role": role + (" · " + ", ".join(why) if why else ""),
                "votes": [
                    {
                        "who": v.annotator,
                        "label": word(LABELS, v.label) if v.label else "no label",
                        "note": _vote_note(v.label, v.provenance, v.verdict),
                    }
                    for v in item.votes
                ],
                "decision": item.decision if item.decision in (Label.RELEVANT, Label.NOT_RELEVANT) else None,
            }
        )
    return {
        "case_id": case.query_id,
        "nonce": nonce,
        "ext_id": case.ext_id,
        "dataset": case.dataset,
        "category": case.category,
        "language": case.language,
        "position": position,
        "kinds": [KIND_WORDS[k] for k in KINDS if k in case.kinds],
        "original": case.original_text,
        "verdicts": [
            {
                "who": v.annotator,
                "verdict": word(VERDICTS, v.verdict)
                + (" (see the proposals)" if v.verdict == Verdict.REWRITE else ""),
                "reason": word(REASONS, v.reason) if v.reason else None,
                "note": v.note,
            }
            for v in case.verdicts
        ],
        "proposals": [{"revision_id": r.revision_id, "text": r.text, "by": r.by} for r in case.rewrites],
        "items": items,
        "counts": case.counts.sentence(),
        "decided": _decided(case),
        "reasons": [{"value": str(value), "label": label} for value, label in REASONS.items()],
        "message": message,
    }


def review_surface(
    data: dict[str, Any],
    *,
    key: str,
    on_save: Callable[[], None],
    on_nav: Callable[[], None],
    on_zoom: Callable[[], None],
) -> Any:
    """Mount the surface; the callbacks run (before the page's next run) when a trigger fires,
    and read its value from ``st.session_state[key]``."""
    return _component(
        key=key,
        data=data,
        on_save_change=on_save,
        on_nav_change=on_nav,
        on_zoom_change=on_zoom,
    )
