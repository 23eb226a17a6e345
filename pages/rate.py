"""Rate: a blind study's trials, one at a time. Nothing on screen says where a query or result came from."""

from __future__ import annotations

import time

import streamlit as st

from db.enums import StudyStatus
from services.core.errors import QrelsError
from services.study.rating import (
    PreferenceTrial,
    QualityTrial,
    load_trial,
    my_queue,
    my_studies,
)
from services.study.rubric import SCALE
from ui.cards import render_card
from ui.components.rating.answers import save_answer
from ui.components.rating.component import mount, saved, sheet_data
from ui.state import database, require_role

COLUMNS = 4
KEY_CURRENT = "rate_current"  # {study name: assignment id on screen}
KEY_SAVED = "rate_saved"  # a message to show after the rerun that follows a save
KEY_PROBLEM = "rate_problem"  # why the last save was refused (shown in the answer sheet)

user = require_role()  # any logged-in user can be a rater
db = database()
if KEY_CURRENT not in st.session_state:
    st.session_state[KEY_CURRENT] = {}

st.title("Rate")
studies = my_studies(db, user)
if not studies:
    st.info("No study has items for you. An admin chooses the raters when creating a study.")
    st.stop()
by_name = {s.name: s for s in studies}
name = (
    st.selectbox("Study", list(by_name), format_func=lambda n: f"{n} ({by_name[n].status})", key="rate_study")
    if len(studies) > 1
    else studies[0].name
)
if by_name[name].status != StudyStatus.OPEN:
    st.info("This study is closed: its answers are locked. Thank you for rating!")
    st.stop()


def show(assignment_id: int) -> None:
    st.session_state[KEY_CURRENT][name] = assignment_id


def show_refs(refs: list, key: str) -> None:
    if not refs:
        return
    cols = st.columns(min(len(refs), COLUMNS))
    for n, ref in enumerate(refs):
        with cols[n % len(cols)]:
            if ref.card is not None:
                render_card(ref.card, key=f"{key}_{n}")
            elif ref.image:
                st.image(ref.image, width="stretch")
            else:
                st.caption("image missing")


def on_save() -> None:
    """The answer sheet's Enter: save, then open the next unanswered trial (before the rerun)."""
    following, problem = save_answer(db, user, st.session_state[KEY_CURRENT].get(name), saved())
    if problem is not None:
        st.session_state[KEY_PROBLEM] = {"id": str(time.time_ns()), "text": problem}
    elif following is not None:
        st.session_state[KEY_SAVED] = "Saved."
        show(following)


def quality(trial: QualityTrial, aid: int) -> None:
    st.subheader("Target")
    cols = st.columns(COLUMNS)
    for n, card in enumerate(trial.targets):
        with cols[n % COLUMNS]:
            render_card(card, key=f"rate_target_{aid}_{n}")
    with st.expander("What the scores mean", icon=":material/help:", expanded=trial.answered == 0):
        for criterion in trial.rubric:
            st.markdown(f"**{criterion.name}**")  # a criterion name is letters, digits, '_', '-'
            st.text(criterion.question)
            for score, anchor in zip(SCALE, criterion.anchors, strict=True):
                st.text(f"{score} — {anchor}")
    cols = st.columns(2)
    for col, query in zip(cols, trial.queries, strict=True):
        with col, st.container(border=True):
            st.subheader(f"Query {query.label}")
            st.text(query.text)  # benchmark text: plain text only
            show_refs(query.refs, f"rate_ref_{aid}_{query.label}")


def preference(trial: PreferenceTrial, aid: int) -> None:
    st.subheader("Query")
    st.text(trial.query_text)  # benchmark text: plain text only
    show_refs(trial.query_refs, f"rate_ref_{aid}")
    st.subheader("Results")
    st.caption("Shown in a shuffled order. Pick the one result that answers the query best.")
    cols = st.columns(COLUMNS)
    for n, option in enumerate(trial.options):
        with cols[n % COLUMNS], st.container(border=True):
            st.markdown(f"**{option.label}**")
            render_card(option.card, key=f"rate_option_{aid}_{n}")


@st.fragment
def rate() -> None:
    """One trial and its answer sheet; a save reruns only this part."""
    queue = my_queue(db, user, name)
    ids = [e.assignment_id for e in queue]
    current = st.session_state[KEY_CURRENT].get(name)
    if current not in ids:
        current = next((e.assignment_id for e in queue if not e.answered), ids[0])
        st.session_state[KEY_CURRENT][name] = current
    try:
        trial = load_trial(db, user, current)
    except QrelsError as e:
        st.error(str(e))
        st.session_state[KEY_CURRENT].pop(name, None)
        return
    aid = trial.assignment_id
    place = ids.index(aid)
    st.progress(trial.answered / max(trial.total, 1), text=f"{trial.answered} / {trial.total} answered")
    nav = st.columns([1, 3, 1])
    nav[0].button(
        "Previous",
        key="rate_previous",
        icon=":material/arrow_back:",
        disabled=place == 0,
        on_click=show,
        args=(ids[max(place - 1, 0)],),
        width="stretch",
    )
    nav[1].caption(f"Item {trial.number} of {trial.total}" + (" · answered" if queue[place].answered else ""))
    nav[2].button(
        "Next",
        key="rate_next",
        icon=":material/arrow_forward:",
        disabled=place == len(ids) - 1,
        on_click=show,
        args=(ids[min(place + 1, len(ids) - 1)],),
        width="stretch",
    )
    if message := st.session_state.pop(KEY_SAVED, None):
        st.toast(message, icon=":material/check:")
    if trial.answered == trial.total:
        st.success("Every item is answered. You can still change an answer until the study closes.")
    if isinstance(trial, QualityTrial):
        quality(trial, aid)
    else:
        preference(trial, aid)
    data = sheet_data(trial, version=str(aid))
    data["problem"] = st.session_state.get(KEY_PROBLEM)
    mount(data, on_save)


rate()
