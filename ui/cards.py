"""Item cards: a thumbnail (never the full-size image), title, text, and zoom on demand."""

from __future__ import annotations

import streamlit as st

from services.core.cards import Card

TEXT_CHARS = 160


@st.dialog("Image", width="large")
def zoom(card: Card) -> None:
    """The full-size image, decoded by the browser only when asked for."""
    if card.original:
        st.image(card.original, width="stretch")
    st.text(card.title)
    st.text(card.text)


def render_card(card: Card, *, key: str) -> None:
    """Draw one card. Text is shown with ``st.text``: benchmark text is never rendered as Markdown."""
    if card.thumb:
        st.image(card.thumb, width="stretch")
    else:
        st.caption(f"no image ({card.image_status})")
    st.text(card.title or card.ext_id)
    body = card.text if len(card.text) <= TEXT_CHARS else card.text[: TEXT_CHARS - 1] + "…"
    if body:
        st.text(body)
    if card.original and st.button("Zoom", key=f"zoom_{key}", icon=":material/zoom_in:", type="tertiary"):
        zoom(card)
