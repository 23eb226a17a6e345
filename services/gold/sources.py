"""Where gold answers come from: the demo's planted truth, a reviewer's adjudication, a gold file.

The gold file (``gold.jsonl``, beside the bundle or anywhere) has one JSON object per line::

    {"query_id": "q0007",                  # the query's id in the bundle
     "verdict": "accept",                  # accept | reject
     "reason": null,                       # for reject: ambiguous | unanswerable | wrong | duplicate | other
     "relevant": ["it000042", "it000077"], # items that are relevant (original positives or not)
     "not_relevant": ["it000013"],         # items that are not (e.g. a wrong labelled positive)
     "note": "optional, for reviewers"}

Items named in neither list keep their original label. Import is all or nothing: an unknown
query or item, a bad verdict or label, an item in both lists or a query twice is refused with
the file and line, and nothing is written.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from db.enums import GoldOrigin, Label, RejectReason, Role, Verdict
from db.models import Item, Qrel, Query, QueryAdjudication
from db.session import Database
from services.agreement.votes import load_votes
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import BundleError, NotFoundError, ValidationError
from services.core.lookups import dataset_or_404, query_or_404
from services.datasets.settings import DatasetSettings
from services.datasets.truth import truth_rows
from services.formats.lines import iter_jsonl
from services.gold.answers import GOLD_VERDICTS, GoldAnswer, check_answer, write_gold
from services.review.adjudication import latest_adjudications

GOLD_FILE = "gold.jsonl"
# Planted gold is drawn round-robin over these kinds, so every kind of mistake can be scored.
PLANTED_KINDS = ("bad", "wrong_positive", "false_negative", "clean")


@dataclass(frozen=True)
class GoldImport:
    dataset: str
    n_gold: int  # gold queries written (each replaces an earlier answer of the query)
    n_items: int  # item labels written
    source: str  # the file read, or "planted truth"


@allow(Role.REVIEWER)
def promote_to_gold(db: Database, actor: Actor, query_id: int, *, note: str = "") -> GoldAnswer:
    """Make a reviewer's adjudication of a query its gold answer.

    The verdict is the reviewer's (a rewrite counts as accepted); each item the reviewer decided
    takes their label; items nobody disputed take what every annotator who finished the query
    said of them (labelled positives nobody judged stay relevant).

    Raises:
        ValidationError: the query has no adjudication yet.
    """
    with db.write() as s:
        query = query_or_404(s, query_id)
        latest = latest_adjudications(s, query_id)
        if None not in latest:
            raise ValidationError("this query has no adjudication yet: decide it on the Review page first")
        verdict, _ = latest[None]
        labels: dict[int, str] = {
            i: Label.RELEVANT
            for i in s.scalars(select(Qrel.item_id).where(Qrel.query_id == query_id, Qrel.score > 0))
        }
        votes = load_votes(s, [query_id]).get(query_id)
        if votes is not None:
            for item_id in votes.judged_items():
                said = set(votes.votes(item_id).values())
                if len(said) == 1 and (label := said.pop()) in (Label.RELEVANT, Label.NOT_RELEVANT):
                    labels[item_id] = label
        for item_id, (label, _) in latest.items():
            if item_id is not None and label in (Label.RELEVANT, Label.NOT_RELEVANT):
                labels[item_id] = label
        reason = None
        if verdict == Verdict.REJECT:
            reason = s.scalar(
                select(QueryAdjudication.reason)
                .where(QueryAdjudication.query_id == query_id)
                .order_by(QueryAdjudication.id.desc())
                .limit(1)
            )
        answer = GoldAnswer(
            query_id,
            Verdict.REJECT if verdict == Verdict.REJECT else Verdict.ACCEPT,
            reason,
            GoldOrigin.ADJUDICATION,
            labels,
            note,
        )
        write_gold(s, actor, query, answer)
    return answer


@allow(Role.ADMIN)
def gold_from_truth(
    db: Database, dataset: str, *, count: int, seed: int = 0, actor: Actor = SYSTEM
) -> GoldImport:
    """Make ``count`` queries of a demo dataset gold from its planted truth (``truth_path``).

    Queries are drawn (by ``seed``) round-robin over bad queries, queries with a wrong labelled
    positive, with a false negative, and clean ones. A bad query's gold verdict is reject; a good
    one's is accept with its true positives relevant and its wrong positives not relevant.

    Raises:
        ValidationError: ``count`` < 1, or the dataset has no planted truth.
    """
    if count < 1:
        raise ValidationError("ask for at least one gold query")
    with db.write() as s:
        ds = dataset_or_404(s, dataset, lock=True)
        path = DatasetSettings.from_stored(ds.settings).truth_path
        if not path or not Path(path).is_file():
            raise ValidationError(f"dataset {dataset!r} has no planted truth (only the demo has truth.jsonl)")
        truth = truth_rows(path)
        by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in PLANTED_KINDS}
        for t in truth:
            kind = (
                "bad"
                if t.get("bad")
                else "wrong_positive"
                if t.get("wrong_positives")
                else "false_negative"
                if t.get("false_negatives")
                else "clean"
            )
            by_kind[kind].append(t)
        rng = random.Random(seed)
        for rows in by_kind.values():
            rng.shuffle(rows)
        chosen: list[dict[str, Any]] = []
        while len(chosen) < count and any(by_kind.values()):
            for kind in PLANTED_KINDS:
                if by_kind[kind] and len(chosen) < count:
                    chosen.append(by_kind[kind].pop())
        queries = {q.ext_id: q for q in s.scalars(select(Query).where(Query.dataset_id == ds.id))}
        items = dict(s.execute(select(Item.ext_id, Item.id).where(Item.dataset_id == ds.id)).all())
        n_items = 0
        for t in chosen:
            query = queries.get(t["query_id"])
            if query is None:
                raise NotFoundError(f"the planted truth names query {t['query_id']!r}, not in {dataset!r}")
            labels = {items[e]: Label.NOT_RELEVANT for e in t.get("labelled_positives", []) if e in items}
            if not t.get("bad"):
                labels.update({items[e]: Label.RELEVANT for e in t.get("true_positives", []) if e in items})
            verdict = Verdict.REJECT if t.get("bad") else Verdict.ACCEPT
            reason = RejectReason.UNANSWERABLE if t.get("bad") else None
            write_gold(s, actor, query, GoldAnswer(query.id, verdict, reason, GoldOrigin.PLANTED, labels))
            n_items += len(labels)
    return GoldImport(dataset, len(chosen), n_items, "planted truth")


def _ids(obj: dict[str, Any], key: str, relname: str, number: int) -> list[str]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise BundleError(f"{key!r} must be a list of item ids", file=relname, line=number)
    return [str(v) for v in value]


@allow(Role.ADMIN)
def import_gold_file(
    db: Database, dataset: str, path: Path | None = None, *, actor: Actor = SYSTEM
) -> GoldImport:
    """Read a gold file (format in the module doc; default ``gold.jsonl`` in the dataset's bundle).

    Raises:
        NotFoundError: no such dataset or file.
        BundleError: a malformed line (the message names the file and line); nothing is written.
    """
    with db.write() as s:
        ds = dataset_or_404(s, dataset, lock=True)
        if path is None:
            if not ds.source_path:
                raise NotFoundError(f"dataset {dataset!r} has no bundle folder; give the gold file's path")
            path = Path(ds.source_path) / GOLD_FILE
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"no gold file at {path}; write one (the README describes gold.jsonl)")
        relname = path.name
        queries = {q.ext_id: q for q in s.scalars(select(Query).where(Query.dataset_id == ds.id))}
        items = dict(s.execute(select(Item.ext_id, Item.id).where(Item.dataset_id == ds.id)).all())
        seen: set[str] = set()
        answers: list[tuple[Query, GoldAnswer]] = []
        for number, obj in iter_jsonl(path, relname):
            qext = str(obj.get("query_id", ""))
            if qext not in queries:
                raise BundleError(
                    f"unknown query {qext!r} (no query of {dataset!r} has that id)", file=relname, line=number
                )
            if qext in seen:
                raise BundleError(f"query {qext!r} appears twice", file=relname, line=number)
            seen.add(qext)
            verdict = str(obj.get("verdict", "")).lower()
            if verdict not in GOLD_VERDICTS:
                raise BundleError(
                    f"verdict must be accept or reject, not {verdict!r}", file=relname, line=number
                )
            relevant, not_relevant = (
                _ids(obj, "relevant", relname, number),
                _ids(obj, "not_relevant", relname, number),
            )
            both = sorted(set(relevant) & set(not_relevant))
            if both:
                raise BundleError(
                    f"items {both[:5]} are both relevant and not relevant", file=relname, line=number
                )
            unknown = sorted({e for e in [*relevant, *not_relevant] if e not in items})
            if unknown:
                raise BundleError(f"unknown items {unknown[:5]} (not in the pool)", file=relname, line=number)
            labels = {items[e]: Label.RELEVANT for e in relevant} | {
                items[e]: Label.NOT_RELEVANT for e in not_relevant
            }
            reason = obj.get("reason")
            try:
                check_answer(verdict, reason, labels)
            except ValidationError as e:
                raise BundleError(str(e), file=relname, line=number) from e
            note = obj.get("note") or ""
            answers.append(
                (
                    queries[qext],
                    GoldAnswer(queries[qext].id, verdict, reason, GoldOrigin.IMPORTED, labels, str(note)),
                )
            )
        if not answers:
            raise BundleError("the gold file holds no answers", file=relname)
        for query, answer in answers:
            write_gold(s, actor, query, answer)
    return GoldImport(dataset, len(answers), sum(len(a.labels) for _, a in answers), str(path))
