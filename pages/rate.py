"""Rate: a blind study's items, one at a time. Nothing on screen says where a query or result came from."""

from __future__ import annotations

import streamlit as st

from services.core.errors import QrelsError
from services.study import study
from services.study.study import SCALE, Answer, PreferenceTask, QualityTask
from ui.cards import render_card
from ui.state import database, require_role

COLUMNS = 4
PREFERENCES = {"A": study.A, "B": study.B, "Tie": study.TIE}
PREFERENCE_NAMES = {v: k for k, v in PREFERENCES.items()}
KEY_CURRENT = "rate_current"  # {study name: assignment id on screen}
KEY_SAVED = "rate_saved"  # a message to show after the rerun that follows a save

user = require_role()  # any logged-in user can be a rater
db = database()
if KEY_CURRENT not in st.session_state:
    st.session_state[KEY_CURRENT] = {}

st.title("Rate")
studies = study.my_studies(db, user)
if not studies:
    st.info("No study has items for you. An admin chooses the raters when creating a study.")
    st.stop()
by_name = {s.name: s for s in studies}
name = (
    st.selectbox("Study", list(by_name), format_func=lambda n: f"{n} ({by_name[n].status})", key="rate_study")
    if len(studies) > 1
    else studies[0].name
)
if by_name[name].status != study.OPEN:
    st.info("This study is closed: its answers are locked. Thank you for rating!")
    st.stop()

queue = study.my_queue(db, user, name)
ids = [e.assignment_id for e in queue]
current = st.session_state[KEY_CURRENT].get(name)
if current not in ids:
    current = next((e.assignment_id for e in queue if not e.answered), ids[0])
    st.session_state[KEY_CURRENT][name] = current


def show(assignment_id: int) -> None:
    st.session_state[KEY_CURRENT][name] = assignment_id


try:
    task = study.load_task(db, user, current)
except QrelsError as e:
    st.error(str(e))
    st.session_state[KEY_CURRENT].pop(name, None)
    st.stop()
aid = task.assignment_id
place = ids.index(aid)

st.progress(task.answered / max(task.total, 1), text=f"{task.answered} / {task.total} answered")
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
nav[1].caption(f"Item {task.number} of {task.total}" + (" · answered" if queue[place].answered else ""))
nav[2].button(
    "Next",
    key="rate_next",
    icon=":material/arrow_forward:",
    disabled=place == len(ids) - 1,
    on_click=show,
    args=(ids[min(place + 1, len(ids) - 1)],),
    width="stretch",
)
if saved := st.session_state.pop(KEY_SAVED, None):
    st.toast(saved, icon=":material/check:")
if task.answered == task.total:
    st.success("Every item is answered. You can still change an answer until the study closes.")


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


def save(answer: Answer) -> None:
    try:
        following = study.submit_answer(db, user, aid, answer)
    except QrelsError as e:
        st.error(str(e))
        return
    st.session_state[KEY_SAVED] = "Saved."
    show(following if following is not None else aid)
    st.rerun()


def quality(task: QualityTask) -> None:
    st.subheader("Target")
    cols = st.columns(COLUMNS)
    for n, card in enumerate(task.targets):
        with cols[n % COLUMNS]:
            render_card(card, key=f"rate_target_{aid}_{n}")
    with st.expander("What the scores mean", icon=":material/help:", expanded=task.answered == 0):
        for criterion in task.rubric:
            st.markdown(f"**{criterion.name}**")  # a criterion name is letters, digits, '_', '-'
            st.text(criterion.question)
            for score, anchor in zip(SCALE, criterion.anchors, strict=True):
                st.text(f"{score} — {anchor}")
    cols = st.columns(2)
    for col, query in zip(cols, task.queries, strict=True):
        with col, st.container(border=True):
            st.subheader(f"Query {query.label}")
            st.text(query.text)  # benchmark text: plain text only
            show_refs(query.refs, f"rate_ref_{aid}_{query.label}")
    with st.form(f"rate_form_{aid}", border=False):
        cols = st.columns(2)
        for col, query in zip(cols, task.queries, strict=True):
            with col:
                for criterion in task.rubric:
                    previous = task.my_scores.get(criterion.name, {}).get(query.label)
                    st.radio(
                        f"{criterion.name} of query {query.label}",
                        SCALE,
                        index=SCALE.index(previous) if previous in SCALE else None,
                        horizontal=True,
                        key=f"rate_{aid}_{criterion.name}_{query.label}",
                    )
        names = list(PREFERENCES)
        previous = PREFERENCE_NAMES.get(task.my_preference)
        st.radio(
            "Which query is better for this target?",
            names,
            index=names.index(previous) if previous else None,
            horizontal=True,
            key=f"rate_{aid}_preference",
        )
        st.text_input("Comment (optional)", value=task.my_comment, max_chars=2000, key=f"rate_{aid}_comment")
        go = st.form_submit_button("Save and next", type="primary", icon=":material/send:", key="rate_save")
    if go:
        scores = {
            c.name: {q.label: st.session_state.get(f"rate_{aid}_{c.name}_{q.label}") for q in task.queries}
            for c in task.rubric
        }
        choice = st.session_state.get(f"rate_{aid}_preference")
        if any(v is None for row in scores.values() for v in row.values()) or choice is None:
            st.error("Score both queries on every criterion and say which one is better (or a tie).")
            return
        save(Answer(scores, PREFERENCES[choice], st.session_state.get(f"rate_{aid}_comment", "")))


def preference(task: PreferenceTask) -> None:
    st.subheader("Query")
    st.text(task.query_text)  # benchmark text: plain text only
    show_refs(task.query_refs, f"rate_ref_{aid}")
    st.subheader("Results")
    st.caption("Shown in a shuffled order. Pick the one result that answers the query best.")
    cols = st.columns(COLUMNS)
    for n, option in enumerate(task.options):
        with cols[n % COLUMNS], st.container(border=True):
            st.markdown(f"**{option.label}**")
            render_card(option.card, key=f"rate_option_{aid}_{n}")
    labels = [o.label for o in task.options]
    with st.form(f"rate_form_{aid}", border=False):
        st.radio(
            "Which result is best?",
            labels,
            index=labels.index(task.my_preference) if task.my_preference in labels else None,
            horizontal=True,
            key=f"rate_{aid}_preference",
        )
        st.text_input("Comment (optional)", value=task.my_comment, max_chars=2000, key=f"rate_{aid}_comment")
        go = st.form_submit_button("Save and next", type="primary", icon=":material/send:", key="rate_save")
    if go:
        choice = st.session_state.get(f"rate_{aid}_preference")
        if choice is None:
            st.error("Pick the best result.")
            return
        save(Answer(preference=choice, comment=st.session_state.get(f"rate_{aid}_comment", "")))


if isinstance(task, QualityTask):
    quality(task)
else:
    preference(task)
