"""TREC run files, read the way ``trec_eval`` reads them (TREC qrels: :mod:`services.formats.qrels`).

A run line is ``qid Q0 docno rank sim run_id`` (fields after ``run_id`` ignored). The rank column
is ignored: each query's list is re-sorted by ``sim`` descending, ties broken by docno in
*descending* byte order (``comp_sim_docno`` in ``form_res_rels.c`` compares ``p2`` to ``p1``).
Blank lines and ``#`` comment lines (which may follow blanks) are skipped, as ``trec_eval`` does.
"""

from __future__ import annotations

import math
from pathlib import Path

from services.core.errors import BundleError
from services.formats.lines import iter_fields

RUN_FIELDS = "'qid Q0 docno rank sim run_id'"


def read_trec_run(path: Path, *, relname: str | None = None) -> dict[str, list[tuple[str, float]]]:
    """Read a TREC run into ``{qid: [(docno, score), ...]}``, ranked as ``trec_eval`` ranks it.

    Queries keep the order of their first line; within a query, documents are sorted by score
    descending, ties by docno descending (the rank column is ignored).

    Raises:
        BundleError: a line with fewer than 6 fields, a score that is not a finite number, or a
            document listed twice for one query; the message names the file and line.
    """
    path = Path(path)
    relname = relname or path.name
    runs: dict[str, list[tuple[str, float]]] = {}
    seen: dict[tuple[str, str], int] = {}
    for line, fields in iter_fields(path, relname, indented_comments=True):
        if len(fields) < 6:
            raise BundleError(
                f"expected 6 whitespace-separated fields {RUN_FIELDS}, got {len(fields)}",
                file=relname,
                line=line,
            )
        qid, _q0, docno, _rank, sim = fields[:5]
        try:
            score = float(sim)
        except ValueError as e:
            raise BundleError(f"score {sim!r} is not a number", file=relname, line=line) from e
        if not math.isfinite(score):
            raise BundleError(f"score {sim!r} is not a finite number", file=relname, line=line)
        key = (qid, docno)
        if key in seen:
            raise BundleError(
                f"query {qid!r} lists document {docno!r} twice (first on line {seen[key]}); "
                "trec_eval refuses duplicate docs",
                file=relname,
                line=line,
            )
        seen[key] = line
        runs.setdefault(qid, []).append((docno, score))
    for ranked in runs.values():
        ranked.sort(key=lambda d: d[0], reverse=True)  # ties: docno descending ...
        ranked.sort(key=lambda d: -d[1])  # ... kept by this stable sort on score
    return runs
