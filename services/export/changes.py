"""``changes.csv``: every way the cleaned split differs from the original one, one row per change.

Each removed query (and why: a ``DROP_*`` reason, or not drawn in the sample), each rewrite, and
each removed and added positive, with the decision's basis and, for an added positive, who added
it and how they found it; each copy of a positive that is not one (``copy_of_positive``) and each
item folded into its group's representative (``copy_collapsed``). A labelled positive that stays although annotators' labels on it differ
is listed too (``positive_kept``), so no disputed item goes in unseen.

For every item row, ``votes`` gives each finished annotator's label with their verdict on the
query (a rejecting annotator's labels are votes too, but the positive rule does not count them),
and ``decided_by`` whose word decided it: the reviewer, or the annotators the rule counted. Rows
are sorted by query id, then kind of change, then item id.
"""

from __future__ import annotations

from typing import Any

from db.enums import Label, Verdict
from services.cleaning.decisions import BASIS_ADJUDICATION, BASIS_ORIGINAL, DROP_NOT_SAMPLED, ItemDecision
from services.export.folder import Folder
from services.export.split import Split, provenance_json, provenance_text

CHANGES = "changes.csv"
CHANGE_KINDS = (
    "query_removed",
    "query_rewritten",
    "positive_removed",
    "positive_added",
    "positive_kept",
    "copy_of_positive",
    "copy_collapsed",
)
# How services/export/duplicates.py's actions show here ("added" copies are positive_added rows).
COPY_CHANGES = {
    "reported": ("copy_of_positive", "a copy of positive {positive}; not a positive (export option leave)"),
    "judged_not_relevant": ("copy_of_positive", "a copy of positive {positive}; judged not relevant here"),
    "collapsed": ("copy_collapsed", "a copy of {positive}, which stands for it (export option collapse)"),
}
CHANGES_HEADER = (
    "query_id",
    "change",
    "item_id",
    "reason",
    "detail",
    "old_text",
    "new_text",
    "basis",
    "provenance",
    "provenance_detail",
    "votes",
    "decided_by",
)
LABEL_WORDS = {Label.RELEVANT: "relevant", Label.NOT_RELEVANT: "not relevant", Label.UNSURE: "unsure"}
VERDICT_WORDS = {
    Verdict.ACCEPT: "accepted the query",
    Verdict.REWRITE: "rewrote the query",
    Verdict.REJECT: "rejected the query",
}


def votes_text(d: ItemDecision) -> str:
    """E.g. ``ann1: relevant (accepted the query); ann2: not relevant (rejected the query, not counted)``."""
    return "; ".join(
        f"{b.by}: {LABEL_WORDS.get(b.label, b.label)} ({VERDICT_WORDS.get(b.verdict, b.verdict)}"
        + ("" if b.counted else ", not counted")
        + ")"
        for b in d.ballots
    )


def decided_by_text(d: ItemDecision) -> str:
    """Whose word decided the item: ``reviewer rev``, ``ann1, ann3`` or ``original labels``."""
    if d.basis == BASIS_ADJUDICATION:
        return "reviewer " + ", ".join(d.decided_by)
    if d.basis == BASIS_ORIGINAL or not d.decided_by:
        return "original labels"
    return ", ".join(d.decided_by)


def _row(query: str, change: str, **fields: str) -> tuple[str, ...]:
    """One row in :data:`CHANGES_HEADER` order; columns not given are empty."""
    values = {"query_id": query, "change": change, **fields}
    return tuple(values.get(column, "") for column in CHANGES_HEADER)


def _item(query: str, change: str, d: ItemDecision, **fields: str) -> tuple[str, ...]:
    count = f"{d.votes_relevant} of {d.voters} annotators said relevant" if d.voters else ""
    return _row(
        query,
        change,
        item_id=d.ext_id,
        detail=count,
        basis=d.basis,
        votes=votes_text(d),
        decided_by=decided_by_text(d),
        **fields,
    )


def change_rows(split: Split) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    order = {kind: n for n, kind in enumerate(CHANGE_KINDS)}
    exported = {q.ext_id: q for q in split.queries}  # as written (copies added or collapsed)
    for q in split.consensus.queries:
        if not q.kept:
            rows.append(
                _row(
                    q.ext_id,
                    "query_removed",
                    reason=q.reason or "",
                    detail=q.detail,
                    old_text=q.original_text,
                )
            )
            continue
        if q.ext_id not in exported:
            size = split.sample.size if split.sample else 0
            detail = f"not drawn in the stratified sample of {size}"
            rows.append(
                _row(
                    q.ext_id,
                    "query_removed",
                    reason=DROP_NOT_SAMPLED,
                    detail=detail,
                    old_text=q.original_text,
                )
            )
            continue
        q = exported[q.ext_id]
        if q.rewritten:
            rows.append(
                _row(
                    q.ext_id, "query_rewritten", old_text=q.original_text, new_text=q.text, basis=q.text_basis
                )
            )
        rows.extend(_item(q.ext_id, "positive_removed", d) for d in q.removed)
        rows.extend(
            _item(
                q.ext_id,
                "positive_added",
                d,
                provenance=provenance_text(d),
                provenance_detail=provenance_json(d),
            )
            for d in q.added
        )
        rows.extend(
            _item(q.ext_id, "positive_kept", d, reason="disputed")
            for d in q.positives
            if d.originally_positive and d.disputed
        )
    for copy in split.copies.rows if split.copies is not None else ():
        if copy.action in COPY_CHANGES:
            change, detail = COPY_CHANGES[copy.action]
            rows.append(
                _row(copy.query, change, item_id=copy.copy, detail=detail.format(positive=copy.positive))
            )
    rows.sort(key=lambda r: (r[0], order[r[1]], r[2]))
    return rows


def write_changes(folder: Folder, split: Split) -> None:
    folder.csv(CHANGES, CHANGES_HEADER, change_rows(split))
