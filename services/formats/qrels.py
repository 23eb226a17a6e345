"""The one qrels reader: BEIR's tab-separated file under a header, and TREC's four columns.

- BEIR (and the native bundle's ``qrels.tsv``): header ``query-id<TAB>corpus-id<TAB>score``, then
  three tab-separated columns per line, integer (graded) scores.
- TREC, read the way ``trec_eval`` reads it: exactly four whitespace-separated fields
  ``qid iter docno rel`` (``iter`` ignored, ``rel`` an integer from -127 to 127). A fifth field
  makes the line invalid, as in ``trec_eval``'s ``parse_qrels_line``; M-BEIR's 5-column qrels need
  ``cut -d' ' -f1-4`` first. Blank lines and lines starting with ``#`` are skipped (only a ``#`` in
  the first column starts a comment, so a query id cannot start with ``#`` there).

Both return :class:`~services.formats.records.QrelRecord` rows in file order; every problem is a
:class:`~services.core.errors.BundleError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from services.core.errors import BundleError
from services.formats.lines import iter_fields, iter_lines
from services.formats.records import QrelRecord

QRELS_HEADER = ("query-id", "corpus-id", "score")
REL_MIN, REL_MAX = -127, 127
TREC_QRELS_FIELDS = "'qid iter docno rel'"


def read_qrels_tsv(path: Path, relname: str) -> list[QrelRecord]:
    """BEIR-style qrels: header ``query-id<TAB>corpus-id<TAB>score``, integer scores."""
    qrels: list[QrelRecord] = []
    header_seen = False
    for line, text in iter_lines(path, relname):
        cols = text.split("\t")
        if not header_seen:
            header_seen = True
            if tuple(c.strip() for c in cols) != QRELS_HEADER:
                raise BundleError(
                    "the first line must be the header 'query-id<TAB>corpus-id<TAB>score'",
                    file=relname,
                    line=line,
                )
            continue
        if len(cols) != 3:
            raise BundleError(
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}",
                file=relname,
                line=line,
            )
        qid, iid, score = (c.strip() for c in cols)
        if not qid or not iid:
            raise BundleError("query-id and corpus-id must not be empty", file=relname, line=line)
        try:
            value = int(score)
        except ValueError as e:
            raise BundleError(f"score {score!r} is not an integer", file=relname, line=line) from e
        qrels.append(QrelRecord(qid, iid, value, relname, line))
    if not header_seen:
        raise BundleError(
            "the file is empty; it needs the header 'query-id<TAB>corpus-id<TAB>score'", file=relname
        )
    return qrels


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
    for line, fields in iter_fields(path, relname, indented_comments=False):
        if len(fields) != 4:
            hint = (
                "; a 5th column (M-BEIR writes the task id there) is not TREC: keep the first four with "
                "cut -d' ' -f1-4"
                if len(fields) == 5
                else ""
            )
            raise BundleError(
                f"expected 4 whitespace-separated fields {TREC_QRELS_FIELDS}, got {len(fields)}{hint}",
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
