"""What the Rate page does when the answer sheet sends an answer (kept apart so tests drive it)."""

from __future__ import annotations

from typing import Any

from db.session import Database
from services.core.auth import Actor
from services.core.errors import QrelsError
from services.study.design import TIE, A, B
from services.study.rating import Answer, submit_answer

PREFERENCES = {"A": A, "B": B, "tie": TIE}


def save_answer(db: Database, user: Actor, current: int, sent: Any) -> tuple[int | None, str | None]:
    """Store the sheet's answer for trial assignment ``current``.

    Returns:
        (the assignment to show next, None) once saved; (None, why) when refused; (None, None)
        when ``sent`` is not an answer to the trial on screen (a late or repeated event).
    """
    if not isinstance(sent, dict) or str(sent.get("v")) != str(current):
        return None, None
    preference = sent.get("preference")
    answer = Answer(
        scores=sent.get("scores") or {},
        preference=PREFERENCES.get(preference, preference),
        comment=str(sent.get("comment") or ""),
    )
    try:
        following = submit_answer(db, user, current, answer)
    except QrelsError as e:
        return None, str(e)
    return (following if following is not None else current), None
