"""TREC qrels: ``trec/qrels-test.txt``, ``qid 0 docno rel`` in four columns, as ``trec_eval`` reads them."""

from __future__ import annotations

from services.core.errors import ValidationError
from services.export.folder import Folder
from services.export.split import Split


def write_trec(folder: Folder, split: Split) -> None:
    rows = split.qrels()
    for q, i, _ in rows:
        for kind, value in (("query", q), ("item", i)):
            if any(c.isspace() for c in value):
                raise ValidationError(
                    f"{kind} id {value!r} contains whitespace, which TREC qrels cannot hold; "
                    "export without the trec format (M-BEIR renumbers ids and works)"
                )
    folder.text("trec/qrels-test.txt", "".join(f"{q} 0 {i} {s}\n" for q, i, s in rows))
