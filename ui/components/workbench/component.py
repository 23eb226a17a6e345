"""Registers the workbench component (workbench.js, workbench.css) and mounts it.

A Streamlit custom component v2: HTML/CSS/JS mounted in the page (a shadow root, no iframe); it
calls Python back through trigger values, one per intention: ``submit``, ``draft``, ``search``,
``nav`` (previous, skip, undo, open) and ``history``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

_HERE = Path(__file__).resolve().parent
KEY = "wb"
EVENTS = ("submit", "draft", "search", "nav", "history")

_component = st.components.v2.component(
    "qrels_workbench",
    js=(_HERE / "workbench.js").read_text(encoding="utf-8"),
    css=(_HERE / "workbench.css").read_text(encoding="utf-8"),
)


def mount(data: dict[str, Any], handlers: dict[str, Callable[[], None]]) -> None:
    """Draw the workbench with ``data``; ``handlers[event]`` runs (before the script) on each trigger."""
    _component(key=KEY, data=data, **{f"on_{event}_change": handlers[event] for event in EVENTS})


def event(name: str) -> Any:
    """Inside a handler: the value the browser sent with trigger ``name``."""
    value = st.session_state.get(KEY)
    return value.get(name) if isinstance(value, dict) else None
