"""The URLs pages and components use for images: the app's own media route (ui/server.py).

The browser caches them for good (a file's name is its content's hash); only logged-in browsers
get them. No image is ever base64-encoded into a page.
"""

from __future__ import annotations

from pathlib import PurePath

from services.core.cards import Card
from ui.server import PREFIX


def _sha(path: str | None) -> tuple[str, str] | None:
    if not path:
        return None
    name = PurePath(path).name
    stem, _, ext = name.partition(".")
    return (stem, ext) if len(stem) == 64 else None


def thumb_url(card: Card | None) -> str | None:
    found = _sha(card.thumb) if card is not None else None
    return f"{PREFIX}/media/t/{found[0]}.jpg" if found else None


def full_url(card: Card | None) -> str | None:
    found = _sha(card.original) if card is not None else None
    return f"{PREFIX}/media/o/{found[0]}.{found[1]}" if found else None


def image_url(path: str | None, *, full: bool = False) -> str | None:
    """A URL for a stored thumbnail or original given by its path (a query's own reference image)."""
    found = _sha(path)
    if not found:
        return None
    return f"{PREFIX}/media/o/{found[0]}.{found[1]}" if full else f"{PREFIX}/media/t/{found[0]}.jpg"
