"""Copies of positives in an export: reported, added as positives, or collapsed to one item.

A positive's copies in the pool (its duplicate group, :mod:`services.duplicates`) are as relevant
as it is, but a benchmark that does not say so counts a system that ranks a copy first as wrong.
The export's ``duplicates`` option says what to do:

- ``leave``: nothing changes; ``changes.csv`` and ``manifest.json`` list every copy of a positive
  that is not a positive itself (``copy_of_positive``);
- ``add``: such copies become positives (basis ``duplicate``, listed as ``positive_added`` with
  the positive they copy), unless the consensus judged them not relevant for that query;
- ``collapse``: each group keeps one item (its representative, the one imported first); the
  other members leave the pool, and their qrels and references go to the representative
  (``copy_collapsed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from db.session import Database
from services.cleaning.decisions import Addition, ItemDecision, QueryOutcome
from services.core.auth import public
from services.duplicates.copies import dataset_groups
from services.export.options import DUPLICATE_OPTIONS

LEAVE, ADD, COLLAPSE = DUPLICATE_OPTIONS
BASIS_DUPLICATE = "duplicate"  # a positive because it is a copy of one
COPIES_BY = "copies"  # who "added" a copy: the export, not an annotator


@dataclass(frozen=True)
class CopyRow:
    """One copy of a positive and what the export did with it."""

    query: str  # query ext id ("" for an item collapsed out of the pool)
    positive: str  # the positive (or representative) it is a copy of
    copy: str
    action: str  # reported | added | judged_not_relevant | collapsed


@dataclass
class CopyReport:
    option: str
    groups: int
    items_in_groups: int
    rows: list[CopyRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.action] = counts.get(row.action, 0) + 1
        return {
            "option": self.option,
            "groups": self.groups,
            "items_in_groups": self.items_in_groups,
            "counts": dict(sorted(counts.items())),
            "copies": [
                {"query": r.query, "positive": r.positive, "copy": r.copy, "action": r.action}
                for r in self.rows
            ],
        }


@public("reads the duplicate groups of a dataset for an export its caller already authorised")
def load_groups(db: Database, dataset_id: int) -> dict[int, list[int]]:
    """The dataset's duplicate groups: representative -> members (representative first)."""
    with db.read() as s:
        return dataset_groups(s, dataset_id)


def apply_copies(
    queries: list[QueryOutcome], pool: Any, groups: dict[int, list[int]], option: str
) -> tuple[list[QueryOutcome], CopyReport]:
    """Report, add or collapse the copies of each query's positives; ``pool`` is changed in place
    for ``collapse``. Returns the queries to write and what was done."""
    report = CopyReport(option, len(groups), sum(len(g) for g in groups.values()))
    if not groups:
        return queries, report
    group_of = {m: rep for rep, members in groups.items() for m in members}
    ext = pool.item_ext
    if option == COLLAPSE:
        return _collapse(queries, pool, groups, group_of, report), report
    out = []
    for q in queries:
        positives = {d.item_id for d in q.positives}
        not_relevant = {d.item_id for d in (*q.decisions, *q.removed) if not d.positive}
        not_relevant_ext = set(q.judged_non_relevant)
        added: dict[int, ItemDecision] = {}
        for d in q.positives:
            rep = group_of.get(d.item_id)
            if rep is None:
                continue
            for copy in groups[rep]:
                if copy in positives or copy == d.item_id or copy in added or copy not in ext:
                    continue
                judged_out = copy in not_relevant or ext[copy] in not_relevant_ext
                action = "judged_not_relevant" if judged_out else ("added" if option == ADD else "reported")
                report.rows.append(CopyRow(q.ext_id, d.ext_id, ext[copy], action))
                if action == "added":
                    added[copy] = ItemDecision(
                        item_id=copy,
                        ext_id=ext[copy],
                        positive=True,
                        originally_positive=False,
                        basis=BASIS_DUPLICATE,
                        votes_relevant=0,
                        voters=0,
                        additions=(Addition(COPIES_BY, BASIS_DUPLICATE, {"of_ext": d.ext_id}),),
                    )
        if added:
            new = sorted([*q.positives, *added.values()], key=lambda d: d.ext_id)
            decisions = q.decisions
            if decisions:
                decisions = tuple(sorted([*decisions, *added.values()], key=lambda d: d.ext_id))
            q = replace(q, positives=tuple(new), decisions=decisions)
        out.append(q)
    report.rows.sort(key=lambda r: (r.query, r.copy, r.positive))
    return out, report


def _collapse(
    queries: list[QueryOutcome],
    pool: Any,
    groups: dict[int, list[int]],
    group_of: dict[int, int],
    report: CopyReport,
) -> list[QueryOutcome]:
    ext = pool.item_ext
    to_rep = {ext[m]: ext[rep] for m, rep in group_of.items() if m in ext and rep in ext}
    gone = {e for e, rep in to_rep.items() if e != rep}
    pool.items = [it for it in pool.items if it.ext_id not in gone]
    for item_id, rep in group_of.items():
        if item_id in ext and rep in ext:
            pool.item_ext[item_id] = ext[rep]
    report.rows.extend(CopyRow("", to_rep[e], e, "collapsed") for e in sorted(gone))

    def folded(
        decisions: tuple[ItemDecision, ...], q: QueryOutcome, record: bool = True
    ) -> tuple[ItemDecision, ...]:
        kept: dict[str, ItemDecision] = {}
        for d in decisions:
            target = to_rep.get(d.ext_id, d.ext_id)
            if d.ext_id != target and record:
                report.rows.append(CopyRow(q.ext_id, target, d.ext_id, "collapsed"))
            if target not in kept or (d.positive and not kept[target].positive):
                kept[target] = replace(d, ext_id=target)
        return tuple(sorted(kept.values(), key=lambda d: d.ext_id))

    out = []
    for q in queries:
        positives = folded(q.positives, q)
        positive_ext = {d.ext_id for d in positives}
        removed = tuple(d for d in folded(q.removed, q) if d.ext_id not in positive_ext)
        zero = sorted({to_rep.get(e, e) for e in q.judged_non_relevant} - positive_ext)
        decisions = folded(q.decisions, q, record=False)
        out.append(
            replace(
                q, positives=positives, removed=removed, judged_non_relevant=tuple(zero), decisions=decisions
            )
        )
    report.rows.sort(key=lambda r: (r.query, r.copy, r.positive))
    return out
