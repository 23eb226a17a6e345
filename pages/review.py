"""Review: settle the queries annotators disagree on, item by item and for the query itself."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.enums import RejectReason, Role
from services.agreement.votes import KINDS
from services.core.errors import QrelsError
from services.datasets.catalog import list_datasets
from services.review import disputes as review
from services.review.adjudication import adjudicate
from ui.cards import render_card
from ui.state import database, require_role

DECISIONS = {"Relevant": "relevant", "Not relevant": "not_relevant"}
VERDICTS = {"Accept": "accept", "Reject": "reject", "Rewrite": "rewrite"}
KIND_NAMES = {
    "verdict": "query verdicts differ",
    "positive": "a labelled positive is disputed",
    "added": "an added positive is disputed",
    "flagged": "unsure or ambiguous",
}

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
    "Disagreement", ["all", *KINDS], key="rv_kind", format_func=lambda k: KIND_NAMES.get(k, k)
)
show_names = filters[3].toggle("Show annotator names", key="rv_names")

queue = review.review_queue(
    db, user, dataset, category=None if category == "all" else category, kind=None if kind == "all" else kind
)
resolved = sum(1 for e in queue if e.resolved)
st.progress(resolved / max(len(queue), 1), text=f"{resolved} / {len(queue)} disputed queries settled")
if not queue:
    st.success("Nothing to review with these filters.")
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "query": e.ext_id,
                "text": e.text,
                "category": e.category,
                "why": ", ".join(KIND_NAMES[k] for k in e.kinds),
                "annotators": e.n_annotators,
                "settled": e.resolved,
            }
            for e in queue
        ]
    ),
    hide_index=True,
    width="stretch",
    height=min(35 * len(queue) + 40, 260),
)
pending = [e for e in queue if not e.resolved] or queue
labels = {e.query_id: f"{e.ext_id} {'✓' if e.resolved else '•'} {e.text[:60]}" for e in queue}
chosen = st.selectbox(
    "Case",
    [e.query_id for e in pending + [e for e in queue if e not in pending]],
    format_func=labels.get,
    key="rv_case",
)

try:
    case = review.load_case(db, user, chosen, show_names=show_names)
except QrelsError as e:
    st.error(str(e))
    st.stop()

with st.container(border=True):
    st.caption(f"Query {case.ext_id} · {case.category or 'no category'} · {case.language or '-'}")
    st.text(case.original_text)  # benchmark text: plain text only
    for who, verdict, reason, note in case.verdicts:
        line = f"{who}: {verdict}" + (f" ({reason})" if reason else "") + (f" — {note}" if note else "")
        st.text(line)

if case.items:
    st.subheader(f"Items in dispute ({len(case.items)})")
    if case.agreed_items:
        st.caption(f"{case.agreed_items} other judged item(s) got the same label from everyone.")
    cols = st.columns(4)
    for n, item in enumerate(case.items):
        with cols[n % 4]:
            render_card(item.card, key=f"rv_{case.query_id}_{item.card.item_id}")
            st.caption("labelled positive" if item.original_positive else "added by an annotator")
            for vote in item.votes:
                st.text(f"{vote.annotator}: {vote.label or '—'}")
            default = next((k for k, v in DECISIONS.items() if v == item.decision), None)
            st.segmented_control(
                "Decision",
                list(DECISIONS),
                default=default,
                key=f"rv_item_{case.query_id}_{item.card.item_id}",
            )

st.subheader("The query")
names = list(VERDICTS)
current = next((k for k, v in VERDICTS.items() if v == case.decision), "Accept")
verdict = st.radio(
    "Final verdict", names, index=names.index(current), horizontal=True, key=f"rv_verdict_{case.query_id}"
)
reason, revision_id, rewrite_text = None, None, None
if verdict == "Reject":
    reason = st.selectbox("Reason", tuple(RejectReason), key=f"rv_reason_{case.query_id}")
elif verdict == "Rewrite":
    options = {r.revision_id: f"{r.by}: {r.text}" for r in case.rewrites}
    if options:
        revision_id = st.radio(
            "Use a rewrite", list(options), format_func=options.get, key=f"rv_rewrite_{case.query_id}"
        )
    rewrite_text = st.text_area(
        "…or write the final text (overrides the choice above)",
        key=f"rv_text_{case.query_id}",
        max_chars=5000,
    )
note = st.text_input("Note", key=f"rv_note_{case.query_id}", max_chars=2000)

if st.button("Save decision", type="primary", key="rv_save"):
    decisions = {}
    missing = 0
    for item in case.items:
        value = st.session_state.get(f"rv_item_{case.query_id}_{item.card.item_id}")
        if value:
            decisions[item.card.item_id] = DECISIONS[value]
        else:
            missing += 1
    if missing and verdict != "Reject":
        st.error(f"Decide every item in dispute ({missing} left), or reject the query.")
    else:
        try:
            adjudicate(
                db,
                user,
                case.query_id,
                items=decisions,
                verdict=VERDICTS[verdict],
                reason=reason,
                revision_id=revision_id,
                rewrite_text=rewrite_text,
                note=note,
            )
        except QrelsError as e:
            st.error(str(e))
        else:
            st.toast("Decision saved.", icon=":material/check:")
            st.rerun()
