"""Review: settle the queries annotators disagree on, one case at a time, from the keyboard or the mouse.

Annotators are letters (A, B, …) here; only an admin may reveal who is who, and each reveal is
logged. The judging surface is a custom component (ui/components/review); saving goes to the next
unsettled case.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.enums import Role
from services.agreement.votes import KINDS
from services.core.errors import QrelsError
from services.datasets.catalog import list_datasets
from services.review import disputes as review
from services.review.adjudication import adjudicate
from services.review.reveal import name_reveals, reveal_names
from ui.cards import zoom
from ui.components.review.component import case_data, review_surface
from ui.state import database, require_role
from ui.words import KINDS as KIND_WORDS
from ui.words import NONE
from ui.words import SHORTCUTS as SHORTCUT_WORDS

SHORT_KINDS = {"verdict": "verdicts", "positive": "a positive", "added": "an added item", "flagged": "unsure"}
KEY_CASE = "rv_case"  # the query id of the case shown
KEY_SURFACE = "rv_surface"  # the component
KEY_NONCE = "rv_nonce"  # bumped by every answer to the component, so it knows the server answered
KEY_MESSAGE = "rv_message"
KEY_ZOOM = "rv_zoom"  # (case, item) to show full size
KEY_REVEALED = "rv_revealed"  # admins: {case: {letter: name}} revealed in this session

user = require_role(Role.REVIEWER)
db = database()
st.title("Review")

datasets = [d.name for d in list_datasets(db, actor=user)]
if not datasets:
    st.info("No datasets yet.")
    st.stop()
filters = st.columns(4)
dataset = filters[0].selectbox("Dataset", datasets, key="rv_dataset")
category = filters[1].selectbox("Category", ["all", *review.categories(db, user, dataset)], key="rv_category")
kind = filters[2].selectbox(
    "Disagreement", ["all", *KINDS], key="rv_kind", format_func=lambda k: KIND_WORDS.get(k, k)
)
shortcut = filters[3].selectbox(
    "Modality shortcut",
    ["all", *SHORTCUT_WORDS],
    key="rv_shortcut",
    format_func=lambda k: SHORTCUT_WORDS.get(k, k),
    help="Whether one modality alone (the image ranker, or BM25 / CLIP text) puts every labelled "
    "positive first: such a query breaks the dual-evidence design.",
)
chosen_filters = {
    "category": None if category == "all" else category,
    "kind": None if kind == "all" else kind,
    "shortcut": None if shortcut == "all" else shortcut,
}
queue = review.review_queue(db, user, dataset, **chosen_filters)
settled = sum(1 for e in queue if e.resolved)
st.progress(settled / max(len(queue), 1), text=f"{settled} / {len(queue)} disputed queries settled")
if not queue:
    st.success("Nothing to review with these filters.")
    st.stop()

ids = [e.query_id for e in queue]
if st.session_state.get(KEY_CASE) not in ids:
    st.session_state[KEY_CASE] = review.next_case(queue, None, step=0) or ids[0]
current: int = st.session_state[KEY_CASE]
entry = queue[ids.index(current)]


def answer(message: dict[str, str] | None) -> None:
    st.session_state[KEY_NONCE] = st.session_state.get(KEY_NONCE, 0) + 1
    st.session_state[KEY_MESSAGE] = message


def triggered(name: str):
    return (st.session_state.get(KEY_SURFACE) or {}).get(name)


def on_save() -> None:
    """Store the reviewer's decisions and go to the next unsettled case (or say why not)."""
    value = triggered("save")
    if not isinstance(value, dict) or value.get("case_id") != current:
        answer({"kind": "error", "text": "That case changed meanwhile; nothing was saved. Decide it again."})
        return
    try:
        adjudicate(
            db,
            user,
            current,
            items={int(item): label for item, label in (value.get("items") or {}).items()},
            verdict=value.get("verdict") or "",
            reason=value.get("reason"),
            revision_id=value.get("revision_id"),
            rewrite_text=value.get("rewrite_text"),
            note=str(value.get("note") or ""),
        )
    except QrelsError as e:
        answer({"kind": "error", "text": str(e)})
        return
    after = review.next_case(review.review_queue(db, user, dataset, **chosen_filters), current, step=0)
    if after is None:
        answer({"kind": "ok", "text": f"Saved {entry.ext_id}. Every case is settled."})
    else:
        st.session_state[KEY_CASE] = after
        answer({"kind": "ok", "text": f"Saved {entry.ext_id}; this is the next unsettled case."})


def on_nav() -> None:
    step = -1 if triggered("nav") == "prev" else 1
    st.session_state[KEY_CASE] = review.next_case(queue, current, step=step)
    answer(None)


def on_zoom() -> None:
    item = triggered("zoom")
    if item is not None:
        st.session_state[KEY_ZOOM] = (current, int(item))


def on_pick() -> None:
    rows = st.session_state["rv_table"].selection.rows
    if rows:
        st.session_state[KEY_CASE] = ids[rows[0]]
        answer(None)


triaged = any(e.suspicion is not None for e in queue)  # the triage columns only once ranking made them
rows = []
for e in queue:
    row = {
        "": "▶" if e.query_id == current else "",
        "query": e.ext_id,
        "text": e.text,
        "in dispute": ", ".join(SHORT_KINDS[k] for k in e.kinds),
        "items": e.n_items,
        "annotators": e.n_annotators,
        "settled": "yes" if e.resolved else "no",
    }
    if triaged:
        row["suspicion"] = NONE if e.suspicion is None else f"{e.suspicion:.2f}"
        row["one modality"] = NONE if e.shortcut is None else SHORTCUT_WORDS.get(e.shortcut, e.shortcut)
    rows.append(row)
# Fixed widths that add up to less than the main column at 1440 px, sidebar open.
widths = {
    "": st.column_config.TextColumn(width=28),
    "query": st.column_config.TextColumn(width=80),
    "text": st.column_config.TextColumn(width=220 if triaged else 300),
    "in dispute": st.column_config.TextColumn(
        width=190 if triaged else 230, help="what the annotators disagree on"
    ),
    "items": st.column_config.NumberColumn(width=60, help="items in dispute"),
    "annotators": st.column_config.NumberColumn(width=85),
    "settled": st.column_config.TextColumn(width=65),
}
if triaged:
    widths["suspicion"] = st.column_config.TextColumn(
        width=75, help="how suspicious the rankers find the labels (0-1), computed after ranking"
    )
    widths["one modality"] = st.column_config.TextColumn(width=110, help="modality shortcut")
with st.expander(f"All {len(queue)} cases (click a row to open it)", icon=":material/table_rows:"):
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        height=min(35 * len(queue) + 40, 320),
        column_config=widths,
        on_select=on_pick,
        selection_mode="single-row",
        key="rv_table",
    )

try:
    case = review.load_case(db, user, current)
except QrelsError as e:
    st.error(str(e))
    st.stop()

unsettled = len(queue) - settled
position = f"Case {ids.index(current) + 1} of {len(queue)} · {unsettled} unsettled" + (
    " · this case is settled (saving again replaces the decision)" if entry.resolved else ""
)
if entry.suspicion is not None:
    position += f" · suspicion {entry.suspicion:.2f}"
if entry.shortcut not in (None, "neither"):
    position += f" · {SHORTCUT_WORDS[entry.shortcut]}"
review_surface(
    case_data(
        case,
        position=position,
        nonce=st.session_state.get(KEY_NONCE, 0),
        message=st.session_state.get(KEY_MESSAGE),
    ),
    key=KEY_SURFACE,
    on_save=on_save,
    on_nav=on_nav,
    on_zoom=on_zoom,
)

zoomed = st.session_state.pop(KEY_ZOOM, None)
if zoomed and zoomed[0] == current:
    card = next((i.card for i in case.items if i.card.item_id == zoomed[1]), None)
    if card is not None:
        zoom(card)

if user.role == Role.ADMIN:
    revealed = st.session_state.setdefault(KEY_REVEALED, {})
    with st.expander(
        "Who is who (admins only; every reveal is logged)",
        icon=":material/visibility:",
        expanded=current in revealed,  # stays open on the rerun the reveal causes
    ):
        if current in revealed:
            st.text(" · ".join(f"{letter} = {name}" for letter, name in revealed[current].items()))
        elif st.button("Reveal the annotators' names on this case", key=f"rv_reveal_{current}"):
            try:
                revealed[current] = reveal_names(db, user, current)
            except QrelsError as e:
                st.error(str(e))
            else:
                st.rerun()
        log = name_reveals(db, user, query_id=current)
        if log:
            st.caption(
                "Revealed before: "
                + "; ".join(f"by {r.admin} on {r.revealed_at:%Y-%m-%d %H:%M} UTC" for r in log[:10])
            )
