"""What the workbench page does when its component asks: save a submit, keep a draft, search,
open another query, list the history. Plain functions over a :class:`Desk` (the page's state as
a mapping), so tests drive them without a browser; pages/workbench.py binds them to Streamlit.
"""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from db.session import Database
from services.annotation.drafts import open_draft, save_draft
from services.annotation.history import last_submitted, my_history
from services.annotation.queue import next_assignment, previous_assignment, progress, skip
from services.annotation.submit import submit
from services.annotation.task import Task, cards, load_task
from services.core.auth import Actor
from services.core.errors import QrelsError, SaveFailed
from services.duplicates.copies import copies_of
from services.gold.feedback import GoldFeedback, gold_feedback
from services.ranking.search import SearchPreparing, search_pool, warm_search
from ui.components.workbench import view

RESULTS = 24  # search results per search
EMPTY = "Your queue is done. Thank you! (o: your queries, Backspace: reopen the last one)"


@dataclass
class Desk:
    """One annotator at one dataset: the database, who, which dataset, and the page's state."""

    db: Database
    user: Actor
    dataset: str
    state: MutableMapping[str, Any]

    def __post_init__(self) -> None:
        self.state.setdefault("wb_current", {})
        self.state.setdefault("wb_loads", 0)

    @property
    def current(self) -> int | None:
        return self.state["wb_current"].get(self.dataset)

    def notice(self, kind: str, text: str, token: str | None = None) -> None:
        self.state["wb_notice"] = {"id": uuid.uuid4().hex, "kind": kind, "text": text, "token": token}

    def open(self, assignment_id: int | None) -> None:
        """Show another query: the component resets its state because the version changes."""
        self.state["wb_current"][self.dataset] = assignment_id
        self.state["wb_loads"] += 1
        for key in ("wb_task", "wb_search", "wb_history"):
            self.state[key] = None

    def land(self, wanted: str | None) -> None:
        """Where a new browser session starts: the query in the URL, the last draft, or the next one.

        It also starts preparing pool search in the background, if it is not ready yet, so the
        annotator's first search finds it ready.
        """
        if self.dataset in self.state["wb_current"]:
            return
        warm_search(self.db, self.dataset)
        if wanted and wanted.isdigit():
            try:
                task = load_task(self.db, self.user, int(wanted))
            except QrelsError:
                task = None
            if task is not None and task.dataset == self.dataset:
                self.state["wb_current"][self.dataset] = task.assignment_id
                self.state["wb_task"] = task
                return
        self.state["wb_current"][self.dataset] = open_draft(
            self.db, self.user, self.dataset
        ) or next_assignment(self.db, self.user, self.dataset)

    def task(self, assignment_id: int) -> Task:
        task: Task | None = self.state.get("wb_task")
        if task is None or task.assignment_id != assignment_id:
            task = self.state["wb_task"] = load_task(self.db, self.user, assignment_id)
        return task

    # ---------------------------------------------------------------- what the component asks

    def submit(self, sent: Any) -> None:
        if not isinstance(sent, dict) or not sent.get("token"):
            return
        token = str(sent["token"])[:64]
        try:
            task = self.task(int(sent.get("aid")))
            work = view.work_from(
                sent.get("work"), task, token=token, time_on_task_ms=int(sent.get("ms") or 0)
            )
            result = submit(self.db, self.user, task.assignment_id, work)
        except SaveFailed as e:
            self.notice("retry", str(e), token)
            return
        except (QrelsError, ValueError, TypeError) as e:
            self.notice("problem", f"Not saved: {e}", token)
            return
        self.state["wb_ack"] = {"token": token}
        self.notice("saved", "Saved (already stored)." if result.duplicate else "Saved.")
        feedback = gold_feedback(self.db, self.user, task.assignment_id)  # training mode only
        if feedback is not None:
            self.notice("training", training_text(feedback, task.query_ext_id))
        if task.assignment_id == self.current:
            self.open(result.next_assignment_id)

    def draft(self, sent: Any) -> None:
        if not isinstance(sent, dict):
            return
        try:
            save_draft(self.db, self.user, int(sent.get("aid")), sent.get("work"), int(sent.get("seq") or 0))
        except (QrelsError, ValueError, TypeError) as e:
            self.notice("problem", f"Your marks are kept in this browser but not on the server: {e}")

    def search(self, sent: Any) -> None:
        if not isinstance(sent, dict):
            return
        req, text, like = sent.get("req"), str(sent.get("text") or "").strip(), sent.get("like")
        label, source = f"Results for “{text}”", text
        try:
            if like is not None:
                like = int(like)
                title = self._title(like) or str(sent.get("title") or like)
                label, source = f"More like “{title}”", f"more like {title}"
            hits = search_pool(
                self.db, self.dataset, actor=self.user, text=text or None, like_item=like, k=RESULTS
            )
            found = cards(self.db, self.user, self.dataset, [h.item_id for h in hits])
            copies = copies_of(self.db, self.dataset, [c.item_id for c in found], actor=self.user)
        except SearchPreparing as e:  # never blocks: the component shows this and asks again
            self.state["wb_search"] = {"req": req, "label": label, "preparing": str(e), "hits": []}
            return
        except (QrelsError, ValueError, TypeError) as e:
            self.state["wb_search"] = {"req": req, "label": label, "error": str(e), "hits": []}
            return
        self.state["wb_search"] = {
            "req": req,
            "label": label,
            "source": source[:500],
            "hits": [view.card_data(c, copies.get(c.item_id)) for c in found],
        }

    def _title(self, item_id: int) -> str | None:
        """An item's title as the dataset stores it (the heading of "more like this" names it)."""
        found = cards(self.db, self.user, self.dataset, [item_id])
        return found[0].title if found and found[0].title else None

    def nav(self, sent: Any) -> None:
        if not isinstance(sent, dict):
            return
        action, current = sent.get("action"), self.current
        try:
            if action == "previous":
                target = previous_assignment(self.db, self.user, self.dataset, before=current)
                empty = "There is no earlier query to go back to."
            elif action == "skip" and current is not None:
                skip(self.db, self.user, current)
                target = next_assignment(self.db, self.user, self.dataset, exclude=current)
                empty = "Nothing else to do: the skipped query is the only one left."
            elif action == "undo":
                target = last_submitted(self.db, self.user, self.dataset)
                empty = "Nothing to undo yet."
            elif action == "open":
                target = self.task(int(sent.get("aid"))).assignment_id
                empty = ""
            else:
                return
        except (QrelsError, ValueError, TypeError) as e:
            self.notice("problem", str(e))
            return
        if target is None:
            self.notice("problem", empty)
        elif target != current or action == "undo":
            self.open(target)

    def history(self, sent: Any) -> None:
        if not isinstance(sent, dict):
            return
        show = str(sent.get("show") or "all")
        try:
            history = my_history(
                self.db, self.user, self.dataset, show=show, offset=max(0, int(sent.get("offset") or 0))
            )
        except (QrelsError, ValueError, TypeError) as e:
            self.notice("problem", str(e))
            return
        self.state["wb_history"] = view.history_data(history, req=sent.get("req"), show=show)

    # ---------------------------------------------------------------- what the component gets

    def data(self) -> dict[str, Any]:
        """The component's data for the query on screen (or the empty queue)."""
        current = self.current
        task = self.task(current) if current is not None else None
        if task is None:
            p = progress(self.db, self.user, self.dataset)
            data: dict[str, Any] = {
                "v": f"empty:{self.state['wb_loads']}",
                "empty": EMPTY,
                "progress": {"done": p.done, "total": p.total, "skipped": p.skipped},
            }
        else:
            data = view.task_data(task, version=f"{task.assignment_id}:{self.state['wb_loads']}")
            data["prefetch"] = self._prefetch(task)
        data.update(
            user=self.user.id,
            ack=self.state.get("wb_ack"),
            notice=self.state.get("wb_notice"),
            search=self.state.get("wb_search"),
            history=self.state.get("wb_history"),
        )
        return data

    def _prefetch(self, task: Task) -> list[str]:
        """The first-screen images of the query that comes next: the browser loads them while the
        annotator works, so the next query shows at once."""
        following = next_assignment(self.db, self.user, self.dataset, exclude=task.assignment_id)
        if following is None:
            return []
        upcoming = self.state.get("wb_upcoming")
        if upcoming is None or upcoming[0] != following:
            upcoming = (following, view.first_screen_images(load_task(self.db, self.user, following)))
            self.state["wb_upcoming"] = upcoming
        return upcoming[1]


def training_text(feedback: GoldFeedback, query: str) -> str:
    """Training mode's answer to a gold query, in one line under the next query."""
    said = {"relevant": "relevant", "not_relevant": "not relevant", None: "left unmarked"}
    wrong = [
        f"“{i.title}” is {said[i.expected]} (you: {said.get(i.given, i.given)})"
        for i in feedback.items
        if not i.right
    ]
    verdict = (
        f"the query should be {'accepted' if feedback.expected_verdict == 'accept' else 'rejected'}"
        if not feedback.verdict_right
        else "the verdict was right"
    )
    text = (
        f"Training — {query} was a practice query: {feedback.right} of {feedback.chances} right; {verdict}."
    )
    if wrong:
        text += " " + "; ".join(wrong[:3]) + ("; …" if len(wrong) > 3 else "") + "."
    if feedback.note:
        text += f" Note: {feedback.note}"
    return text
