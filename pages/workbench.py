"""The annotation workbench: one query at a time, judged from the keyboard (or the mouse) in the browser.

The judging surface is one component (ui/components/workbench); this page feeds it the query on
screen and answers its requests: save a submit, keep a draft, search the pool, open another query,
list the history. The query on screen is in the URL (``?a=<assignment>``), so a reload opens it again.
"""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from db.enums import Role
from services.annotation.drafts import open_draft, save_draft
from services.annotation.history import last_submitted, my_history
from services.annotation.queue import my_datasets, next_assignment, previous_assignment, progress, skip
from services.annotation.submit import submit
from services.annotation.task import Task, cards, load_task
from services.core.errors import QrelsError, SaveFailed
from services.ranking.search import search_pool
from ui.components.workbench import view
from ui.components.workbench.component import event, mount
from ui.state import database, require_role

RESULTS = 24  # search results per search

user = require_role(Role.ANNOTATOR)
db = database()
S = st.session_state
for key, default in (("wb_current", {}), ("wb_loads", 0)):
    S.setdefault(key, default)

datasets = my_datasets(db, user)
if not datasets:
    st.title("Workbench")
    st.info("No queries are assigned to you yet. An admin assigns them on the Assignments page.")
    st.stop()
dataset = st.sidebar.selectbox("Dataset", datasets, key="wb_dataset") if len(datasets) > 1 else datasets[0]


def notice(kind: str, text: str, token: str | None = None) -> None:
    S["wb_notice"] = {"id": uuid.uuid4().hex, "kind": kind, "text": text, "token": token}


def open_assignment(assignment_id: int | None) -> None:
    """Show another query: the component resets its state because the version changes."""
    S["wb_current"][dataset] = assignment_id
    S["wb_loads"] += 1
    S["wb_task"] = None
    S["wb_search"] = None
    S["wb_history"] = None


def landing() -> int | None:
    """Where a new browser session starts: the query in the URL, the last draft, or the next one."""
    wanted = st.query_params.get("a")
    if wanted and wanted.isdigit():
        try:
            task = load_task(db, user, int(wanted))
        except QrelsError:
            task = None
        if task is not None and task.dataset == dataset:
            S["wb_task"] = task
            return task.assignment_id
    return open_draft(db, user, dataset) or next_assignment(db, user, dataset)


def on_screen(assignment_id: int) -> Task:
    task: Task | None = S.get("wb_task")
    if task is None or task.assignment_id != assignment_id:
        task = S["wb_task"] = load_task(db, user, assignment_id)
    return task


def on_submit() -> None:
    sent = event("submit")
    if not isinstance(sent, dict) or not sent.get("token"):
        return
    token = str(sent["token"])[:64]
    try:
        task = on_screen(int(sent.get("aid")))
        work = view.work_from(sent.get("work"), task, token=token, time_on_task_ms=int(sent.get("ms") or 0))
        result = submit(db, user, task.assignment_id, work)
    except SaveFailed as e:
        notice("retry", str(e), token)
        return
    except (QrelsError, ValueError, TypeError) as e:
        notice("problem", f"Not saved: {e}", token)
        return
    S["wb_ack"] = {"token": token}
    notice("saved", "Saved (already stored)." if result.duplicate else "Saved.")
    if task.assignment_id == S["wb_current"].get(dataset):
        open_assignment(result.next_assignment_id)


def on_draft() -> None:
    sent = event("draft")
    if not isinstance(sent, dict):
        return
    try:
        save_draft(db, user, int(sent.get("aid")), sent.get("work"), int(sent.get("seq") or 0))
    except (QrelsError, ValueError, TypeError) as e:
        notice("problem", f"Your marks are kept in this browser but not on the server: {e}")


def on_search() -> None:
    sent = event("search")
    if not isinstance(sent, dict):
        return
    req, text, like = sent.get("req"), (sent.get("text") or "").strip(), sent.get("like")
    if like is not None:
        label, source = (
            f"Items that look like “{sent.get('title') or like}”",
            f"more like {sent.get('title') or like}",
        )
    else:
        label, source = f"Results for “{text}”", text
    try:
        hits = search_pool(db, dataset, actor=user, text=text or None, like_item=like, k=RESULTS)
        found = cards(db, user, dataset, [h.item_id for h in hits])
    except QrelsError as e:
        S["wb_search"] = {"req": req, "label": label, "error": str(e), "hits": []}
        return
    S["wb_search"] = {
        "req": req,
        "label": label,
        "source": source[:500],
        "hits": [view.card_data(c) for c in found],
    }


def on_nav() -> None:
    sent = event("nav")
    if not isinstance(sent, dict):
        return
    action, current = sent.get("action"), S["wb_current"].get(dataset)
    try:
        if action == "previous":
            target = previous_assignment(db, user, dataset, before=current)
            empty = "There is no earlier query to go back to."
        elif action == "skip" and current is not None:
            skip(db, user, current)
            target = next_assignment(db, user, dataset, exclude=current)
            empty = "Nothing else to do: the skipped query is the only one left."
        elif action == "undo":
            target = last_submitted(db, user, dataset)
            empty = "Nothing to undo yet."
        elif action == "open":
            target = on_screen(int(sent.get("aid"))).assignment_id
            empty = ""
        else:
            return
    except (QrelsError, ValueError, TypeError) as e:
        notice("problem", str(e))
        return
    if target is None:
        notice("problem", empty)
    elif target != current:
        open_assignment(target)


def on_history() -> None:
    sent = event("history")
    if not isinstance(sent, dict):
        return
    show = str(sent.get("show") or "all")
    try:
        history = my_history(db, user, dataset, show=show, offset=max(0, int(sent.get("offset") or 0)))
    except (QrelsError, ValueError, TypeError) as e:
        notice("problem", str(e))
        return
    S["wb_history"] = view.history_data(history, req=sent.get("req"), show=show)


if dataset not in S["wb_current"]:
    S["wb_current"][dataset] = landing()
guidelines = st.sidebar.empty()
st.html("<style>.stMainBlockContainer, .block-container { padding-top: 2.2rem; padding-bottom: 0; }</style>")


@st.fragment
def workbench() -> None:
    """Only this part reruns when the component asks something (submit, draft, search, ...)."""
    current = S["wb_current"][dataset]
    data: dict[str, Any]
    try:
        task = on_screen(current) if current is not None else None
    except QrelsError:
        open_assignment(next_assignment(db, user, dataset))
        st.rerun(scope="fragment")
    if task is None:
        p = progress(db, user, dataset)
        data = {
            "v": f"empty:{S['wb_loads']}",
            "empty": "Your queue is done. Thank you! (o: your queries, Backspace: reopen the last one)",
            "progress": {"done": p.done, "total": p.total, "skipped": p.skipped},
        }
        st.query_params.pop("a", None)
    else:
        data = view.task_data(task, version=f"{task.assignment_id}:{S['wb_loads']}")
        data["prefetch"] = prefetch(task)
        st.query_params["a"] = str(task.assignment_id)
    data.update(
        user=user.id,
        ack=S.get("wb_ack"),
        notice=S.get("wb_notice"),
        search=S.get("wb_search"),
        history=S.get("wb_history"),
    )
    mount(
        data,
        {"submit": on_submit, "draft": on_draft, "search": on_search, "nav": on_nav, "history": on_history},
    )


def prefetch(task: Task) -> list[str]:
    """The first-screen images of the query that comes next: the browser loads them while the
    annotator works, so the next query shows at once."""
    following = next_assignment(db, user, dataset, exclude=task.assignment_id)
    if following is None:
        return []
    upcoming = S.get("wb_upcoming")
    if upcoming is None or upcoming[0] != following:
        upcoming = S["wb_upcoming"] = (following, view.first_screen_images(load_task(db, user, following)))
    return upcoming[1]


workbench()
current_task: Task | None = S.get("wb_task")
if current_task is not None and current_task.guidelines.strip():
    with guidelines.expander("Guidelines", icon=":material/help:"):
        st.markdown(current_task.guidelines)  # written by an admin, not by the benchmark
