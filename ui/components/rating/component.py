"""The rater's answer sheet as a component: scores, preference and comment from the keyboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from services.study.rating import MAX_COMMENT_CHARS, PreferenceTrial, QualityTrial
from services.study.rubric import SCALE

_HERE = Path(__file__).resolve().parent
KEY = "rate_sheet"

_component = st.components.v2.component(
    "qrels_rating",
    js=(_HERE / "rating.js").read_text(encoding="utf-8"),
    css=(_HERE / "rating.css").read_text(encoding="utf-8"),
)


def sheet_data(trial: QualityTrial | PreferenceTrial, *, version: str) -> dict[str, Any]:
    """What the answer sheet gets: labels and rubric only, never a source, system or query id."""
    if isinstance(trial, QualityTrial):
        return {
            "v": version,
            "kind": "quality",
            "criteria": [c.name for c in trial.rubric],
            "anchors": {c.name: list(c.anchors) for c in trial.rubric},
            "labels": [q.label for q in trial.queries],
            "scale": list(SCALE),
            "scores": trial.my_scores,
            "preference": trial.my_preference,
            "comment": trial.my_comment,
            "max_comment": MAX_COMMENT_CHARS,
        }
    return {
        "v": version,
        "kind": "preference",
        "options": [o.label for o in trial.options],
        "preference": trial.my_preference,
        "comment": trial.my_comment,
        "max_comment": MAX_COMMENT_CHARS,
    }


def mount(data: dict[str, Any], on_save: Callable[[], None]) -> None:
    _component(key=KEY, data=data, on_save_change=on_save)


def saved() -> Any:
    value = st.session_state.get(KEY)
    return value.get("save") if isinstance(value, dict) else None
