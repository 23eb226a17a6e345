"""What a page shows of an item: the one card every page uses (workbench, review, rate, datasets)."""

from __future__ import annotations

from dataclasses import dataclass

from db.models import Item
from services.core.media import MediaStore


@dataclass(frozen=True)
class Card:
    """An item as a card: text fields and the paths of its stored thumbnail and original.

    ``thumb``/``original`` are None when the item has no stored image (``image_status`` says why).
    """

    item_id: int
    ext_id: str
    title: str
    text: str
    category: str | None
    language: str | None
    thumb: str | None
    original: str | None
    image_status: str


@dataclass(frozen=True)
class RefView:
    """A reference of a composed query: a pool item's card, or an image of the query's own."""

    card: Card | None
    image: str | None


def card_of(item: Item, store: MediaStore) -> Card:
    sha = item.image_sha256
    return Card(
        item.id,
        item.ext_id,
        item.title,
        item.text,
        item.category,
        item.language,
        str(store.thumb_path(sha)) if sha else None,
        str(store.original_path(sha, item.image_ext or "jpg")) if sha else None,
        item.image_status,
    )
