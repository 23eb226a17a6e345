"""TREC qrels and run files, read the way ``trec_eval`` reads them.

- qrels: exactly four whitespace-separated fields ``qid iter docno rel`` (``iter`` ignored, ``rel``
  an integer from -127 to 127). A fifth field makes the line invalid, as in ``trec_eval``'s
  ``parse_qrels_line``; M-BEIR's 5-column qrels need ``cut -d' ' -f1-4`` first.
- run: ``qid Q0 docno rank sim run_id`` (fields after ``run_id`` ignored). The rank column is
  ignored: each query's list is re-sorted by ``sim`` descending, ties broken by docno in
  *descending* byte order (``comp_sim_docno`` in ``form_res_rels.c`` compares ``p2`` to ``p1``).

Blank lines and ``#`` comment lines are skipped, as ``trec_eval`` does (in qrels only a ``#`` in
the first column starts a comment, so a query id cannot start with ``#`` there).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from services.core.errors import BundleError
from services.formats.native import QrelRecord, iter_lines

REL_MIN, REL_MAX = -127, 127
QRELS_FIELDS = "'qid iter docno rel'"
RUN_FIELDS = "'qid Q0 docno rank sim run_id'"


def _lines(path: Path, relname: str, *, indented_comments: bool) -> Iterator[tuple[int, list[str]]]:
    if not path.is_file():
        raise BundleError("file not found", file=relname)
    for number, text in iter_lines(path, relname):
        # trec_eval: a qrels comment starts the line; a run comment may follow blanks.
        if (text.lstrip() if indented_comments else text).startswith("#"):
            continue
        yield number, text.split()


def read_trec_qrels(path: Path, *, relname: str | None = None) -> list[QrelRecord]:
    """Read a TREC qrels file into qrels records, in file order.

    Args:
        path: the qrels file.
        relname: how errors name the file (default: its name).

    Raises:
        BundleError: a line without exactly 4 fields, a non-integer or out-of-range ``rel``, or the
            same (qid, docno) judged twice; the message names the file and line.
    """
    path = Path(path)
    relname = relname or path.name
    qrels: list[QrelRecord] = []
    seen: dict[tuple[str, str], int] = {}
    for line, fields in _lines(path, relname, indented_comments=False):
        if len(fields) != 4:
            hint = (
                "; a 5th column (M-BEIR writes the task id there) is not TREC: keep the first four with "
                "cut -d' ' -f1-4"
                if len(fields) == 5
                else ""
            )
            raise BundleError(
                f"expected 4 whitespace-separated fields {QRELS_FIELDS}, got {len(fields)}{hint}",
                file=relname,
                line=line,
            )
        qid, _iteration, docno, rel = fields
        try:
            score = int(rel)
        except ValueError as e:
            raise BundleError(f"rel {rel!r} is not an integer", file=relname, line=line) from e
        if not REL_MIN <= score <= REL_MAX:
            raise BundleError(f"rel {score} is outside {REL_MIN}..{REL_MAX}", file=relname, line=line)
        key = (qid, docno)
        if key in seen:
            raise BundleError(
                f"query {qid!r} judges document {docno!r} twice (first on line {seen[key]})",
                file=relname,
                line=line,
            )
        seen[key] = line
        qrels.append(QrelRecord(qid, docno, score, relname, line))
    return qrels


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
    for line, fields in _lines(path, relname, indented_comments=True):
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
