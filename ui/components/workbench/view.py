"""The workbench component's Python side: a Task in (what the browser gets), the annotator's work out.

Pure functions, so unit tests cover the exact data the browser receives (nothing of other
annotators, nothing that says what a query is for) and the exact work a submit stores.
"""

from __future__ import annotations

from typing import Any

from db.enums import Label, Provenance, RejectReason, Verdict
from services.annotation.history import History
from services.annotation.submit import MAX_NOTE_CHARS, LabelInput, QueryWork
from services.annotation.task import Task
from services.core.cards import Card
from services.core.errors import ValidationError
from services.formats.limits import MAX_QUERY_CHARS
from ui.media import full_url, image_url, thumb_url

TEXT_CHARS = 1_500  # an item's text as far as the card and the zoom show it
REASONS = {
    RejectReason.AMBIGUOUS: "Ambiguous: more than one reading",
    RejectReason.UNANSWERABLE: "Unanswerable: nothing in the pool can satisfy it",
    RejectReason.WRONG: "Wrong: it contradicts its own target",
    RejectReason.DUPLICATE: "Duplicate of another query",
    RejectReason.OTHER: "Other (say why in the note)",
}


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def card_data(card: Card, copies: list[int] | None = None) -> dict[str, Any]:
    """What the browser gets of an item: ids, text and image URLs (never the image itself), and
    the ids of its copies in the pool when it has some."""
    data = {
        "id": card.item_id,
        "title": card.title or card.ext_id,
        "text": _clip(card.text),
        "thumb": thumb_url(card),
        "full": full_url(card),
        "image": card.image_status,
    }
    if copies:
        data["copies"] = list(copies)
    return data


def task_data(task: Task, *, version: str) -> dict[str, Any]:
    """The query on screen as the component's data (``version`` changes when a new one is shown)."""
    added = {}
    for item_id, provenance in task.my_added.items():
        if task.my_labels.get(item_id) == Label.RELEVANT:
            added[str(item_id)] = {"provenance": provenance, "search": task.search_texts.get(item_id, "")}
    positives = {c.item_id for c in task.positives}
    saved = {
        "labels": {str(i): label for i, label in task.my_labels.items() if i in positives},
        "added": added,
        "verdict": task.my_verdict or Verdict.ACCEPT,
        "reason": task.my_reason,
        "note": task.my_note,
        "rewrite": task.text if task.my_verdict == Verdict.REWRITE else "",
        "copies": {str(i): True for i in task.copy_sources},
    }
    candidates = []
    for c in task.candidates:
        entry = {**card_data(c.card, task.copies.get(c.card.item_id)), "pos": c.position}
        if task.show_scores:
            entry["rank"], entry["score"] = c.rank, round(c.score, 4)
            entry["rankers"] = {
                name: v.get("rank") for name, v in sorted(c.rankers.items()) if isinstance(v, dict)
            }
        candidates.append(entry)
    refs = []
    for ref in task.refs:
        if ref.card is not None:
            refs.append(
                {
                    "title": ref.card.title or ref.card.ext_id,
                    "thumb": thumb_url(ref.card),
                    "full": full_url(ref.card),
                }
            )
        else:
            refs.append(
                {"title": "reference image", "thumb": image_url(ref.image), "full": image_url(ref.image)}
            )
    data: dict[str, Any] = {
        "v": version,
        "query": {
            "aid": task.assignment_id,
            "ext_id": task.query_ext_id,
            "text": task.text,
            "original": task.original_text,
            "category": task.category,
            "language": task.language,
            "status": task.status,
            "refs": refs,
        },
        "progress": {
            "done": task.progress.done,
            "total": task.progress.total,
            "skipped": task.progress.skipped,
        },
        "positives": [card_data(c, task.copies.get(c.item_id)) for c in task.positives],
        "candidates": candidates,
        "found": [
            {**card_data(c, task.copies.get(c.item_id)), "search": task.search_texts.get(c.item_id, "")}
            for c in task.added_elsewhere
        ],
        "saved": saved,
        "draft": {"work": task.draft, "seq": task.draft_seq} if task.draft is not None else None,
        "show_scores": task.show_scores,
        "limits": {"rewrite": MAX_QUERY_CHARS, "note": MAX_NOTE_CHARS},
        "reasons": [{"value": r.value, "label": REASONS[r]} for r in RejectReason],
    }
    if task.hint is not None:  # only when this user may see it (services.triage.views.hint_for)
        data["hint"] = round(task.hint, 2)
    return data


def first_screen_images(task: Task, candidates: int = 10) -> list[str]:
    """Thumbnail URLs of what a query shows without scrolling: its positives and first candidates."""
    cards = [*task.positives, *(c.card for c in task.candidates[:candidates])]
    return [url for url in (thumb_url(c) for c in cards) if url]


def history_data(history: History, *, req: int, show: str) -> dict[str, Any]:
    return {
        "req": req,
        "show": show,
        "total": history.total,
        "offset": history.offset,
        "entries": [
            {
                "aid": e.assignment_id,
                "ext_id": e.query_ext_id,
                "text": e.text[:300],
                "status": e.status,
                "verdict": e.verdict,
                "when": e.when.strftime("%Y-%m-%d %H:%M") if e.when else "",
            }
            for e in history.entries
        ],
    }


def _item_id(key: Any) -> int:
    try:
        return int(key)
    except (TypeError, ValueError) as e:
        raise ValidationError(f"not an item id: {key!r}") from e


def work_from(payload: dict[str, Any], task: Task, *, token: str, time_on_task_ms: int) -> QueryWork:
    """The :class:`QueryWork` a submit from the component means, checked against the task on screen.

    Raises:
        ValidationError: the payload names an item that is not on this query's screen, or is malformed.
    """
    if not isinstance(payload, dict):
        raise ValidationError("the page sent no work to save; reload the page")
    positives = {c.item_id for c in task.positives}
    positions = {c.card.item_id: c.position for c in task.candidates}
    found = {c.item_id for c in task.added_elsewhere}
    labels: dict[int, LabelInput] = {}
    for key, label in (payload.get("labels") or {}).items():
        item_id = _item_id(key)
        if item_id not in positives:
            raise ValidationError(f"item {item_id} is not a labelled positive of this query")
        if label not in tuple(Label):
            raise ValidationError(f"unknown label {label!r}")
        labels[item_id] = LabelInput(label, Provenance.ORIGINAL)
    for key, added in (payload.get("added") or {}).items():
        item_id = _item_id(key)
        if item_id in positives:
            continue
        provenance = (added or {}).get("provenance")
        if provenance == Provenance.CANDIDATE and item_id in positions:
            labels[item_id] = LabelInput(Label.RELEVANT, Provenance.CANDIDATE, position=positions[item_id])
        elif provenance == Provenance.SEARCH or item_id in found:
            text = str((added or {}).get("search") or "").strip() or "search"
            labels[item_id] = LabelInput(Label.RELEVANT, Provenance.SEARCH, search_text=text[:500])
        else:
            raise ValidationError(f"item {item_id} was neither a candidate nor a search result of this query")
    # "same label for its copies": only for items judged in this work (a stale mark is dropped)
    marks = payload.get("copies") or {}
    marked = [k for k, on in marks.items() if on] if isinstance(marks, dict) else list(marks)
    sources = frozenset(i for i in map(_item_id, marked) if i in labels)
    verdict = payload.get("verdict") or Verdict.ACCEPT
    rewrite = payload.get("rewrite") if verdict == Verdict.REWRITE else None
    if verdict == Verdict.REWRITE and (rewrite or "").strip() == task.original_text.strip():
        raise ValidationError("the rewrite is the same as the query: change the text, or accept the query")
    return QueryWork(
        labels=labels,
        verdict=verdict,
        reason=payload.get("reason") if verdict == Verdict.REJECT else None,
        note=str(payload.get("note") or "") if verdict != Verdict.ACCEPT else "",
        rewrite=rewrite,
        time_on_task_ms=max(0, int(time_on_task_ms)),
        client_token=token,
        copy_sources=sources,
    )
