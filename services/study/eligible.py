"""What a study could sample: the eligible trials of a query-quality or system-preference study.

Creating a study (:mod:`services.study.create`) samples from these; :func:`count_eligible` tells a
page or the CLI how many there are before anything is written, so the sample can default to all.

- query quality: a query group with exactly one query of each of the two sources and a labelled
  target (an item positive for both queries, else for either), at most :data:`MAX_TARGETS` shown.
- system preference: a query every system returns something for, where the systems' results
  differ (with one result in all there is nothing to choose).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import Role, StudyKind
from db.models import Qrel, Query
from db.session import Database
from services.core.auth import Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.study.systems import system_results

MAX_TARGETS = 3

QualityTrial = tuple[str, dict[str, Query], list[int]]  # group key, {source: query}, targets
PreferenceTrial = tuple[Query, list[dict[str, Any]]]  # query, options with each system's rank


def quality_eligible(
    s: Session, dataset_id: int, sources: Sequence[str]
) -> tuple[list[QualityTrial], Counter[str]]:
    """The groups a query-quality study may sample, and why the others may not (with counts)."""
    groups: dict[str, dict[str, list[Query]]] = defaultdict(lambda: defaultdict(list))
    for q in s.scalars(
        select(Query)
        .where(Query.dataset_id == dataset_id, Query.group_key.is_not(None), Query.source.in_(sources))
        .order_by(Query.id)
    ):
        groups[q.group_key][q.source].append(q)
    positives: dict[int, set[int]] = defaultdict(set)
    for qid, iid in s.execute(
        select(Qrel.query_id, Qrel.item_id).join(Query).where(Query.dataset_id == dataset_id, Qrel.score > 0)
    ):
        positives[qid].add(iid)
    eligible: list[QualityTrial] = []
    skipped: Counter[str] = Counter()
    for key in sorted(groups):
        by_source = groups[key]
        if any(len(by_source.get(src, [])) != 1 for src in sources):
            skipped["group without exactly one query of each source"] += 1
            continue
        pair = {src: by_source[src][0] for src in sources}
        sets = [positives[q.id] for q in pair.values()]
        targets = sorted(set.intersection(*sets)) or sorted(set.union(*sets))
        if not targets:
            skipped["group without a labelled target"] += 1
            continue
        eligible.append((key, pair, targets[:MAX_TARGETS]))
    return eligible, skipped


def preference_eligible(
    s: Session, dataset_id: int, names: Sequence[str], run_files: Mapping[str, Path], top_n: int
) -> tuple[list[PreferenceTrial], Counter[str]]:
    """The queries a system-preference study may sample, and why the others may not."""
    results, skipped = system_results(
        s, dataset_id, [n for n in names if n not in run_files], run_files, top_n
    )
    skipped = Counter(skipped)
    eligible: list[PreferenceTrial] = []
    for q in s.scalars(select(Query).where(Query.dataset_id == dataset_id).order_by(Query.id)):
        lists = {n: results[n].get(q.id, []) for n in names}
        if not all(lists.values()):
            skipped["query a system returns nothing for"] += 1
            continue
        ranks: dict[int, dict[str, int]] = defaultdict(dict)
        for system, ranked in lists.items():
            for rank, iid in enumerate(ranked, start=1):
                ranks[iid][system] = rank
        if len(ranks) < 2:
            skipped["query every system answers alike"] += 1
            continue
        eligible.append((q, [{"item_id": iid, "ranks": ranks[iid]} for iid in sorted(ranks)]))
    return eligible, skipped


@dataclass(frozen=True)
class Eligibility:
    n_eligible: int
    unit: str  # "groups" or "queries"
    skipped: dict[str, int]  # why others are not, with how many


@allow(Role.ADMIN)
def count_eligible(
    db: Database,
    actor: Actor,
    *,
    dataset: str,
    kind: str,
    sources: Sequence[str] = (),
    systems: Sequence[str] = (),
    run_files: Mapping[str, Path] | None = None,
    top_n: int = 1,
) -> Eligibility:
    """How many trials a study of ``kind`` on ``dataset`` could sample (nothing is written).

    Raises:
        ValidationError: an unknown ranking or an unreadable run file (as creating would).
    """
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        if kind == StudyKind.QUERY_QUALITY:
            eligible, skipped = quality_eligible(s, ds.id, list(sources))
            return Eligibility(len(eligible), "groups", dict(skipped))
        if kind != StudyKind.SYSTEM_PREFERENCE:
            raise ValidationError(
                f"a study is {StudyKind.QUERY_QUALITY} or {StudyKind.SYSTEM_PREFERENCE}, not {kind!r}"
            )
        names = [str(x).strip() for x in systems if str(x).strip()] + list(run_files or {})
        eligible, skipped = preference_eligible(s, ds.id, names, dict(run_files or {}), top_n)
        return Eligibility(len(eligible), "queries", dict(skipped))
