"""The export's audit: every id a qrels or run file names must exist in the files it is read with.

Read back from the written files, per format: each qrel's and run line's item in the exported
corpus, its query in the queries file; BEIR's and the native bundle's reference items in their
corpus; M-BEIR's qrels and candidate lists in its pool and query files. (An audit of the MTEB copy
of M-BEIR found 89.9 % of one task's qrel rows pointing at corpus ids that were not there: a file
set like that must never leave this app.) TREC has no corpus file of its own: its ids are checked
against the native or BEIR corpus written beside it, else against the exported pool.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from services.core.errors import ValidationError
from services.export.folder import Folder
from services.export.split import Split
from services.export.writers.trec import QRELS, RUNS

SHOWN = 10  # ids named per problem; the rest are counted


@dataclass
class _Audit:
    root: Path
    problems: list[str] = field(default_factory=list)

    def check(self, file: str, kind: str, ids: Iterable[str], known: set[str], where: str) -> None:
        missing = sorted(set(ids) - known)
        if missing:
            shown = ", ".join(repr(m) for m in missing[:SHOWN])
            more = f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
            self.problems.append(f"{file} names {kind} {shown}{more} missing from {where}")

    def jsonl(self, rel: str) -> list[dict]:
        lines = (self.root / rel).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def columns(self, rel: str, a: int, b: int, *, header: bool = False) -> list[tuple[str, str]]:
        lines = (self.root / rel).read_text(encoding="utf-8").splitlines()[1 if header else 0 :]
        rows = [line.split("\t") if "\t" in line else line.split() for line in lines if line.strip()]
        return [(r[a], r[b]) for r in rows]


def check_export_ids(folder: Folder, split: Split) -> None:
    """Check the ids of every written qrels, run and query file against its corpus and queries.

    Raises:
        ValidationError: some file names ids its corpus or queries file lacks; the message names
            the file and the ids.
    """
    audit = _Audit(folder.root)
    written = folder.files
    corpus = {it.ext_id for it in split.pool.items}
    queries = {q.ext_id for q in split.queries}
    corpus_at, queries_at = "the exported pool", "the exported queries"

    if "items.jsonl" in written:
        corpus, corpus_at = {str(r["id"]) for r in audit.jsonl("items.jsonl")}, "items.jsonl"
        rows = audit.jsonl("queries.jsonl")
        queries, queries_at = {str(r["id"]) for r in rows}, "queries.jsonl"
        pairs = audit.columns("qrels.tsv", 0, 1, header=True)
        audit.check("qrels.tsv", "items", (i for _, i in pairs), corpus, corpus_at)
        audit.check("qrels.tsv", "queries", (q for q, _ in pairs), queries, queries_at)
        refs = [str(i) for r in rows for i in r.get("ref_items", [])]
        audit.check("queries.jsonl", "reference items", refs, corpus, corpus_at)

    if "beir/corpus.jsonl" in written:
        beir_corpus = {str(r["_id"]) for r in audit.jsonl("beir/corpus.jsonl")}
        rows = audit.jsonl("beir/queries.jsonl")
        beir_queries = {str(r["_id"]) for r in rows}
        pairs = audit.columns("beir/qrels/test.tsv", 0, 1, header=True)
        audit.check("beir/qrels/test.tsv", "items", (i for _, i in pairs), beir_corpus, "beir/corpus.jsonl")
        audit.check(
            "beir/qrels/test.tsv", "queries", (q for q, _ in pairs), beir_queries, "beir/queries.jsonl"
        )
        refs = [str(i) for r in rows for i in (r.get("metadata") or {}).get("ref_items") or []]
        audit.check("beir/queries.jsonl", "reference items", refs, beir_corpus, "beir/corpus.jsonl")
        if "items.jsonl" not in written:
            corpus, corpus_at = beir_corpus, "beir/corpus.jsonl"
            queries, queries_at = beir_queries, "beir/queries.jsonl"

    trec_files = [QRELS] if QRELS in written else []
    trec_files += sorted(rel for rel in written if rel.startswith(f"{RUNS}/"))
    for rel in trec_files:
        pairs = audit.columns(rel, 0, 2)
        audit.check(rel, "items", (i for _, i in pairs), corpus, corpus_at)
        audit.check(rel, "queries", (q for q, _ in pairs), queries, queries_at)

    _check_mbeir(audit, written)
    _check_tables(audit, written, corpus, corpus_at, queries, queries_at)
    if audit.problems:
        raise ValidationError(
            "the export would name ids its own files lack, so nothing was written: "
            + "; ".join(audit.problems)
            + " (the dataset's rows point at items or queries of another dataset: re-import it)"
        )


def _check_mbeir(audit: _Audit, written: set[str]) -> None:
    for query_file in sorted(r for r in written if r.startswith("mbeir/query/test/")):
        stem = Path(query_file).name.removesuffix("_test.jsonl")
        pool_file = f"mbeir/cand_pool/local/{stem}_cand_pool.jsonl"
        dids = {str(r["did"]) for r in audit.jsonl(pool_file)}
        rows = audit.jsonl(query_file)
        qids = {str(r["qid"]) for r in rows}
        listed = [str(d) for r in rows for d in (*r["pos_cand_list"], *r["neg_cand_list"])]
        audit.check(query_file, "candidates", listed, dids, pool_file)
        for qrels in (
            f"mbeir/qrels/test/{stem}_test_qrels.txt",
            f"mbeir/qrels/test/{stem}_test_qrels.trec.txt",
        ):
            pairs = audit.columns(qrels, 0, 2)
            audit.check(qrels, "candidates", (d for _, d in pairs), dids, pool_file)
            audit.check(qrels, "queries", (q for q, _ in pairs), qids, query_file)


def _check_tables(
    audit: _Audit, written: set[str], corpus: set[str], corpus_at: str, queries: set[str], queries_at: str
) -> None:
    if "tables/qrels.csv" not in written:
        return
    with (audit.root / "tables/qrels.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    audit.check("tables/qrels.csv", "items", (r["item_id"] for r in rows), corpus, corpus_at)
    audit.check("tables/qrels.csv", "queries", (r["query_id"] for r in rows), queries, queries_at)
