"""Tables for analysis: ``tables/queries.{csv,parquet}`` and ``tables/qrels.{csv,parquet}``.

A query row says how its text and positives changed and which single modality alone solves it
(``modality_shortcut``: text, image, both, neither; empty when the dataset was not triaged); a
qrels row says the item's decision
(kept, added, removed, judged_non_relevant), its basis (adjudication, consensus, original) and,
for an added positive, who added it and how.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from services.cleaning.decisions import BASIS_ORIGINAL
from services.export.folder import Folder
from services.export.options import CSV, PARQUET
from services.export.split import Split, provenance_text

QUERY_COLUMNS = (
    "query_id",
    "text",
    "original_text",
    "rewritten",
    "text_basis",
    "category",
    "language",
    "source",
    "group",
    "n_annotators",
    "n_positives",
    "n_added",
    "n_removed",
    "modality_shortcut",
)
QREL_COLUMNS = ("query_id", "item_id", "score", "decision", "decision_basis", "provenance")


def build_tables(split: Split) -> tuple[pd.DataFrame, pd.DataFrame]:
    queries = pd.DataFrame(
        [
            (
                q.ext_id,
                q.text,
                q.original_text,
                q.rewritten,
                q.text_basis,
                q.category,
                q.language,
                q.source,
                q.group_key,
                q.n_annotators,
                len(q.positives),
                len(q.added),
                len(q.removed),
                split.pool.shortcuts.get(q.query_id),
            )
            for q in split.queries
        ],
        columns=list(QUERY_COLUMNS),
    )
    rows = []
    for q in split.queries:
        for d in q.positives:
            rows.append(
                (q.ext_id, d.ext_id, 1, "added" if d.added else "kept", d.basis, provenance_text(d) or None)
            )
        for d in q.removed:
            rows.append((q.ext_id, d.ext_id, 0, "removed", d.basis, None))
        for ext in q.judged_non_relevant:
            rows.append((q.ext_id, ext, 0, "judged_non_relevant", BASIS_ORIGINAL, None))
    rows.sort(key=lambda r: (r[0], r[1]))
    qrels = pd.DataFrame(rows, columns=list(QREL_COLUMNS))
    return queries, qrels


def write_tables(folder: Folder, split: Split, formats: Sequence[str]) -> None:
    queries, qrels = build_tables(split)
    if CSV in formats:
        folder.text("tables/queries.csv", queries.to_csv(index=False, lineterminator="\n"))
        folder.text("tables/qrels.csv", qrels.to_csv(index=False, lineterminator="\n"))
    if PARQUET in formats:
        folder.parquet("tables/queries.parquet", queries)
        folder.parquet("tables/qrels.parquet", qrels)
