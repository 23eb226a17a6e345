"""Browser URLs of item images, for components that draw images themselves.

Both functions return None until the app serves the media store over HTTP (the lead is adding a
media route); components then fall back to no thumbnail and a zoom drawn with ``st.image``
(``ui.cards.zoom``). They are the one place such URLs are made, so that route plugs in here.
"""

from __future__ import annotations

from services.core.cards import Card


def thumb_url(card: Card) -> str | None:
    """The URL of ``card``'s thumbnail (longest side 256 px), or None when none can be served."""
    return None


def full_url(card: Card) -> str | None:
    """The URL of ``card``'s stored original, or None when none can be served."""
    return None
