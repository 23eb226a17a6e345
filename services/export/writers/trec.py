"""TREC: the qrels and every stored ranking as a run, in the files ``trec_eval``, ranx and ir_measures read.

- ``trec/qrels-test.txt``: ``qid 0 docno rel``, four columns.
- ``runs/<run>.trec``: ``qid Q0 docno rank score tag``, six columns, one file per stored ranking
  (each ranker's and the pooled one), over the exported queries, best first. The score is
  ``K + 1 - rank`` (``K`` the run's deepest rank): ``trec_eval`` orders by score and breaks ties by
  docno, so a rank-derived score keeps the stored order exactly, as the app's evaluation does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.core.errors import ValidationError
from services.export.folder import Folder
from services.export.split import Ranking, Split

QRELS = "trec/qrels-test.txt"
RUNS = "runs"


def run_file(name: str) -> str:
    """The file of the run called ``name`` (a safe file name)."""
    return f"{RUNS}/{re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('._') or 'run'}.trec"


def _check_ids(pairs: Iterable[tuple[str, str]], what: str) -> None:
    for q, i in pairs:
        for kind, value in (("query", q), ("item", i)):
            if any(c.isspace() for c in value):
                raise ValidationError(
                    f"{kind} id {value!r} contains whitespace, which TREC {what} cannot hold; "
                    "export without the trec format (M-BEIR renumbers ids and works)"
                )


def run_lines(ranking: Ranking, tag: str) -> str:
    """A ranking as TREC run lines, queries sorted, each best first."""
    depth = max((len(items) for items in ranking.values()), default=0)
    return "".join(
        f"{q} Q0 {item} {rank} {depth + 1 - rank} {tag}\n"
        for q in sorted(ranking)
        for rank, item in enumerate(ranking[q], start=1)
    )


def write_trec(folder: Folder, split: Split) -> None:
    rows = split.qrels()
    _check_ids(((q, i) for q, i, _ in rows), "qrels")
    folder.text(QRELS, "".join(f"{q} 0 {i} {s}\n" for q, i, s in rows))
    files: dict[str, str] = {}
    for name, ranking in sorted(split.runs.items()):
        _check_ids(((q, i) for q, items in ranking.items() for i in items), "runs")
        path = run_file(name)
        if path in files:
            raise ValidationError(f"runs {files[path]!r} and {name!r} would both be written to {path}")
        files[path] = name
        tag = run_file(name).removeprefix(f"{RUNS}/").removesuffix(".trec")
        folder.text(path, run_lines(ranking, tag))
