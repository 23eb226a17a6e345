"""The annotation workbench: one query at a time, its labelled positives and ranked candidates."""

from __future__ import annotations

import time
import uuid

import streamlit as st
from streamlit_shortcuts import add_shortcuts

from db.enums import RejectReason, Role
from services.annotation.queue import my_datasets, next_assignment, previous_assignment, skip
from services.annotation.queue import progress as queue_progress
from services.annotation.submit import LabelInput, QueryWork, submit, undo_last
from services.annotation.task import Task, cards, load_task
from services.core.errors import QrelsError, SaveFailed
from services.ranking.search import search_pool
from ui.cards import render_card
from ui.state import database, require_role

PER_PAGE = 20
COLUMNS = 5
POSITIVE_LABELS = {"Yes": "relevant", "No": "not_relevant", "Unsure": "unsure"}
LABEL_NAMES = {v: k for k, v in POSITIVE_LABELS.items()}
VERDICTS = {"Accept": "accept", "Reject": "reject", "Rewrite": "rewrite"}
SHORTCUTS = {
    # Ctrl+Enter does not reach the page while a checkbox or radio has the focus (their own
    # keyboard handling stops it); Ctrl+S always does.
    "wb_submit": ["ctrl+s", "ctrl+enter"],
    "wb_skip": "alt+s",
    "wb_previous": "alt+p",
    "wb_undo": "alt+z",
    "wb_next_page": "alt+arrowright",
    "wb_prev_page": "alt+arrowleft",
}
HELP = """
**Keyboard shortcuts** — Submit and next: `Ctrl+S` (or `Ctrl+Enter` from a text box) · Skip: `Alt+S` · Previous query: `Alt+P` ·
Undo last submit: `Alt+Z` · Candidate pages: `Alt+←` / `Alt+→`
"""

KEY_CURRENT = "wb_current"  # {dataset: assignment id}
KEY_TASK = "wb_task"  # the Task on screen (cached between reruns)
KEY_STARTED = "wb_started"  # {assignment id: time shown}
KEY_ADDED = "wb_added"  # {assignment id: {item id: LabelInput}} added positives
KEY_PENDING = "wb_pending"  # (assignment id, QueryWork) not yet stored: retried, never dropped
KEY_TOKEN = "wb_token"  # {assignment id: client token of the next submit}
KEY_PROBLEM = "wb_problem"  # why the last submit was refused, shown beside the button
KEY_SEARCH = "wb_search"  # (assignment id, text, like item id, like item ext id) of the last search

user = require_role(Role.ANNOTATOR)
db = database()
for key, default in ((KEY_CURRENT, {}), (KEY_STARTED, {}), (KEY_ADDED, {}), (KEY_TOKEN, {})):
    if key not in st.session_state:
        st.session_state[key] = default

st.title("Workbench")
# At a fixed place near the top: the shortcuts live in a tiny iframe whose listener dies with it,
# so it must not be re-created when the query (and the number of cards above it) changes.
add_shortcuts(**SHORTCUTS)
datasets = my_datasets(db, user)
if not datasets:
    st.info("No queries are assigned to you yet. An admin assigns them on the Assignments page.")
    st.stop()
dataset = st.selectbox("Dataset", datasets, key="wb_dataset") if len(datasets) > 1 else datasets[0]


def open_assignment(assignment_id: int | None) -> None:
    st.session_state[KEY_CURRENT][dataset] = assignment_id
    st.session_state.pop(KEY_TASK, None)
    st.session_state["wb_page"] = 1


def store(assignment_id: int, decision: QueryWork) -> bool:
    """Submit. A decision the database could not take is kept, shown and retried, never dropped.

    Returns False when the decision itself needs fixing (the message is shown).
    """
    try:
        result = submit(db, user, assignment_id, decision)
    except SaveFailed as e:
        st.session_state[KEY_PENDING] = (assignment_id, decision)
        st.session_state["wb_error"] = str(e)
        return True
    except QrelsError as e:
        st.session_state[KEY_PROBLEM] = str(e)
        return False
    st.session_state.pop(KEY_PENDING, None)
    st.session_state.pop("wb_error", None)
    st.session_state[KEY_TOKEN].pop(assignment_id, None)
    st.session_state[KEY_ADDED].pop(assignment_id, None)
    st.session_state["wb_saved"] = "Saved." if not result.duplicate else "Saved (already stored)."
    open_assignment(result.next_assignment_id)
    return True


pending = st.session_state.get(KEY_PENDING)
if pending is not None:
    st.error(f"Your last submit is not saved yet: {st.session_state.get('wb_error', '')}")
    if st.button("Retry saving", type="primary", key="wb_retry"):
        store(*pending)
        st.rerun()
    st.stop()

current = st.session_state[KEY_CURRENT].get(dataset)
if current is None:
    current = next_assignment(db, user, dataset)
    open_assignment(current)

task: Task | None = st.session_state.get(KEY_TASK)
if current is not None and (task is None or task.assignment_id != current):
    try:
        task = load_task(db, user, current)
    except QrelsError as e:
        st.error(str(e))
        open_assignment(None)
        st.stop()
    st.session_state[KEY_TASK] = task
    st.session_state[KEY_STARTED].setdefault(current, time.time())

top = st.columns([4, 1, 1, 1])
progress = task.progress if task else queue_progress(db, user, dataset)
with top[0]:
    st.progress(progress.done / max(progress.total, 1), text=f"{progress.done} / {progress.total} done")
if top[1].button("Previous", key="wb_previous", icon=":material/arrow_back:", width="stretch"):
    open_assignment(previous_assignment(db, user, dataset, before=current) or current)
    st.rerun()
if top[2].button("Skip", key="wb_skip", icon=":material/skip_next:", width="stretch", disabled=task is None):
    skip(db, user, current)
    open_assignment(next_assignment(db, user, dataset, exclude=current))
    st.rerun()
if top[3].button("Undo last", key="wb_undo", icon=":material/undo:", width="stretch"):
    reopened = undo_last(db, user, dataset)
    if reopened is None:
        st.toast("Nothing to undo.")
    else:
        st.session_state[KEY_ADDED].pop(reopened, None)
        open_assignment(reopened)
        st.rerun()
if saved := st.session_state.pop("wb_saved", None):
    st.toast(saved, icon=":material/check:")

if task is None:
    st.success("Your queue is done. Thank you!")
    st.stop()

aid = task.assignment_id
added: dict[int, LabelInput] = st.session_state[KEY_ADDED].setdefault(
    aid,
    {
        item: LabelInput("relevant", provenance)
        for item, provenance in task.my_added.items()
        if task.my_labels.get(item) == "relevant"
    },
)

with st.container(border=True):
    st.caption(f"Query {task.query_ext_id} · {task.category or 'no category'} · {task.language or '-'}")
    st.text(task.text)  # benchmark text: shown as plain text, never Markdown or HTML
    if task.text != task.original_text:
        st.caption("Original text")
        st.text(task.original_text)
    if task.refs:
        st.caption("Reference images")
        ref_cols = st.columns(6)  # thumbnail-sized, however few references there are
        for n, ref in enumerate(task.refs):
            with ref_cols[n % len(ref_cols)]:
                if ref.card is not None:
                    render_card(ref.card, key=f"ref_{aid}_{n}")
                elif ref.image:
                    st.image(ref.image, width="stretch")
                else:
                    st.caption("image missing")

with st.expander("Guidelines and shortcuts", icon=":material/help:"):
    if task.guidelines.strip():
        st.markdown(task.guidelines)  # written by an admin, not by the benchmark
    st.markdown(HELP)

st.subheader(f"Labelled positives ({len(task.positives)})")
if not task.positives:
    st.caption("This query has no labelled positive. Add any relevant candidate below.")
cols = st.columns(COLUMNS)
for n, card in enumerate(task.positives):
    with cols[n % COLUMNS]:
        render_card(card, key=f"pos_{aid}_{card.item_id}")
        previous = task.my_labels.get(card.item_id)
        st.segmented_control(
            "Relevant?",
            list(POSITIVE_LABELS),
            default=LABEL_NAMES.get(previous) if previous else None,
            key=f"pos_{aid}_{card.item_id}",
        )


def toggle(item_id: int, position: int) -> None:
    if item_id in added:
        del added[item_id]
    else:
        added[item_id] = LabelInput("relevant", "candidate", position=position)


@st.fragment
def candidate_grid() -> None:
    """Only this part reruns when the annotator pages through or ticks candidates."""
    candidates = task.candidates
    st.subheader(f"Candidates ({len(candidates)})")
    if not candidates:
        st.caption("No ranked candidates for this dataset yet; an admin runs the ranking job.")
        return
    if not task.show_scores:
        st.caption("Shown in a shuffled order. Tick every item that satisfies the query.")
    pages = max(1, -(-len(candidates) // PER_PAGE))
    page = min(st.session_state.get("wb_page", 1), pages)
    nav = st.columns([1, 3, 1])
    if nav[0].button("Previous page", key="wb_prev_page", disabled=page <= 1, width="stretch"):
        page -= 1
    if nav[2].button("Next page", key="wb_next_page", disabled=page >= pages, width="stretch"):
        page += 1
    st.session_state["wb_page"] = page
    nav[1].caption(f"Page {page} of {pages}")
    grid = st.columns(COLUMNS)
    for n, cand in enumerate(candidates[(page - 1) * PER_PAGE : page * PER_PAGE]):
        item_id = cand.card.item_id
        with grid[n % COLUMNS]:
            render_card(cand.card, key=f"cand_{aid}_{item_id}")
            if task.show_scores:
                rankers = ", ".join(f"{name} #{v['rank']}" for name, v in sorted(cand.rankers.items()))
                st.caption(f"rank {cand.rank} · {cand.score:.3f} · {rankers}")
            st.checkbox(
                "Relevant",
                value=item_id in added,
                key=f"cand_{aid}_{item_id}",
                on_change=toggle,
                args=(item_id, cand.position),
            )
            if st.button(
                "More like this", key=f"like_{aid}_{item_id}", icon=":material/image_search:", type="tertiary"
            ):
                st.session_state[KEY_SEARCH] = (aid, None, item_id, cand.card.ext_id)
                st.rerun()


candidate_grid()


def toggle_search(item_id: int, search_text: str) -> None:
    if item_id in added:
        del added[item_id]
    else:
        added[item_id] = LabelInput("relevant", "search", search_text=search_text)


@st.fragment
def pool_search() -> None:
    """Free-text search over the whole pool, or "more like this" from a card."""
    st.subheader("Search the pool")
    with st.form(f"search_form_{aid}", border=False):
        cols = st.columns([5, 1])
        text = cols[0].text_input(
            "Search text",
            key=f"search_text_{aid}",
            label_visibility="collapsed",
            placeholder="Search the pool…",
        )
        if cols[1].form_submit_button("Search", icon=":material/search:", width="stretch") and text.strip():
            st.session_state[KEY_SEARCH] = (aid, text.strip(), None, None)
    state = st.session_state.get(KEY_SEARCH)
    if not state or state[0] != aid:
        return
    _, text, like_item, like_ext = state
    label = text if text else f"more like {like_ext}"
    try:
        hits = search_pool(db, task.dataset, actor=user, text=text, like_item=like_item, k=PER_PAGE)
    except QrelsError as e:
        st.caption(str(e))
        return
    st.caption(f"Results for: {label}" if text else f"Items that look like {like_ext}")
    shown = [h for h in hits if h.item_id not in {c.item_id for c in task.positives}]
    grid = st.columns(COLUMNS)
    for n, card in enumerate(cards(db, user, task.dataset, [h.item_id for h in shown])):
        with grid[n % COLUMNS]:
            render_card(card, key=f"search_{aid}_{card.item_id}")
            st.checkbox(
                "Relevant",
                value=card.item_id in added,
                key=f"search_{aid}_{card.item_id}",
                on_change=toggle_search,
                args=(card.item_id, label),
            )


pool_search()

st.subheader("The query itself")
names = list(VERDICTS)
previous_verdict = next((k for k, v in VERDICTS.items() if v == task.my_verdict), None)
verdict = st.radio(
    "Verdict",
    names,
    index=names.index(previous_verdict) if previous_verdict else 0,
    horizontal=True,
    key=f"verdict_{aid}",
)
if verdict == "Reject":
    st.selectbox(
        "Reason",
        tuple(RejectReason),
        index=tuple(RejectReason).index(task.my_reason) if task.my_reason in tuple(RejectReason) else 0,
        key=f"reason_{aid}",
    )
    st.text_input("Note (required for 'other')", value=task.my_note, key=f"note_{aid}", max_chars=2000)
elif verdict == "Rewrite":
    st.text_area("Rewritten query", value=task.text, key=f"rewrite_{aid}", max_chars=5000)
    st.text_input("Note (optional)", value=task.my_note, key=f"note_{aid}", max_chars=2000)


def on_submit(task: Task, added: dict[int, LabelInput]) -> None:
    """Runs before the script on the click, so one run both saves and draws the next query."""
    aid = task.assignment_id
    verdict = st.session_state.get(f"verdict_{aid}", "Accept")
    labels: dict[int, LabelInput] = dict(added)
    for card in task.positives:
        chosen = st.session_state.get(f"pos_{aid}_{card.item_id}")
        if chosen:
            labels[card.item_id] = LabelInput(POSITIVE_LABELS[chosen], "original")
    token = st.session_state[KEY_TOKEN].setdefault(aid, uuid.uuid4().hex)
    started = st.session_state[KEY_STARTED].get(aid, time.time())
    decision = QueryWork(
        labels=labels,
        verdict=VERDICTS[verdict],
        reason=st.session_state.get(f"reason_{aid}") if verdict == "Reject" else None,
        note=(st.session_state.get(f"note_{aid}") or "") if verdict != "Accept" else "",
        rewrite=st.session_state.get(f"rewrite_{aid}") if verdict == "Rewrite" else None,
        time_on_task_ms=int((time.time() - started) * 1000),
        client_token=token,
    )
    if store(aid, decision):
        st.session_state[KEY_STARTED].pop(aid, None)


st.button(
    "Submit and next",
    type="primary",
    key="wb_submit",
    icon=":material/send:",
    on_click=on_submit,
    args=(task, added),
)
if message := st.session_state.pop(KEY_PROBLEM, None):
    st.error(message)  # the decision needs fixing; nothing was saved
