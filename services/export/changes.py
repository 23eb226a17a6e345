"""``changes.csv``: every way the cleaned split differs from the original one, one row per change.

Each removed query (and why: a ``DROP_*`` reason, or not drawn in the sample), each rewrite, and
each removed and added positive, with the decision's basis and, for an added positive, who added
it and how they found it. Rows are sorted by query id, then kind of change, then item id.
"""

from __future__ import annotations

from typing import Any

from services.cleaning.decisions import DROP_NOT_SAMPLED
from services.export.folder import Folder
from services.export.split import Split, provenance_json, provenance_text

CHANGES = "changes.csv"
CHANGE_KINDS = ("query_removed", "query_rewritten", "positive_removed", "positive_added")
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
)


def change_rows(split: Split) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    order = {kind: n for n, kind in enumerate(CHANGE_KINDS)}
    exported = {q.ext_id for q in split.queries}
    for q in split.consensus.queries:
        if not q.kept:
            rows.append((q.ext_id, "query_removed", "", q.reason, q.detail, q.original_text, "", "", "", ""))
            continue
        if q.ext_id not in exported:
            size = split.sample.size if split.sample else 0
            rows.append(
                (
                    q.ext_id,
                    "query_removed",
                    "",
                    DROP_NOT_SAMPLED,
                    f"not drawn in the stratified sample of {size}",
                    q.original_text,
                    "",
                    "",
                    "",
                    "",
                )
            )
            continue
        if q.rewritten:
            rows.append(
                (q.ext_id, "query_rewritten", "", "", "", q.original_text, q.text, q.text_basis, "", "")
            )
        for d in q.removed:
            votes = f"{d.votes_relevant} of {d.voters} annotators said relevant" if d.voters else ""
            rows.append((q.ext_id, "positive_removed", d.ext_id, "", votes, "", "", d.basis, "", ""))
        for d in q.added:
            votes = f"{d.votes_relevant} of {d.voters} annotators said relevant" if d.voters else ""
            rows.append(
                (
                    q.ext_id,
                    "positive_added",
                    d.ext_id,
                    "",
                    votes,
                    "",
                    "",
                    d.basis,
                    provenance_text(d),
                    provenance_json(d),
                )
            )
    rows.sort(key=lambda r: (r[0], order[r[1]], r[2]))
    return rows


def write_changes(folder: Folder, split: Split) -> None:
    folder.csv(CHANGES, CHANGES_HEADER, change_rows(split))
