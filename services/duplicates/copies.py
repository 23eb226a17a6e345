"""Reading a dataset's duplicate groups: an item's copies, the groups listed, and the planted truth.

The workbench shows how many copies a card has and applies a label to them
(:mod:`services.annotation.submit`); the export reports or folds copies of positives
(:mod:`services.export.duplicates`); the Ranking page lists the groups; the demo's planted copies
(``truth.jsonl`` rows of kind ``duplicate``) score the search (:func:`duplicate_score`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from db.duplicates import DuplicateGroup, DuplicateMember
from db.enums import Role
from db.models import Item
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.datasets.settings import DatasetSettings
from services.datasets.truth import truth_rows

_IN_CHUNK = 5_000


def copies_in(s: Session, item_ids: Iterable[int]) -> dict[int, list[int]]:
    """For each given item that is in a group: the other members' item ids, sorted."""
    wanted = sorted(set(item_ids))
    groups: dict[int, int] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        groups.update(
            s.execute(
                select(DuplicateMember.item_id, DuplicateMember.group_id).where(
                    DuplicateMember.item_id.in_(wanted[start : start + _IN_CHUNK])
                )
            ).all()
        )
    if not groups:
        return {}
    members: dict[int, list[int]] = defaultdict(list)
    ids = sorted(set(groups.values()))
    for start in range(0, len(ids), _IN_CHUNK):
        for group_id, item_id in s.execute(
            select(DuplicateMember.group_id, DuplicateMember.item_id)
            .where(DuplicateMember.group_id.in_(ids[start : start + _IN_CHUNK]))
            .order_by(DuplicateMember.item_id)
        ):
            members[group_id].append(item_id)
    return {item: [m for m in members[g] if m != item] for item, g in groups.items()}


def dataset_groups(s: Session, dataset_id: int) -> dict[int, list[int]]:
    """``representative -> every member`` (the representative first, then by item id)."""
    out: dict[int, list[int]] = {}
    rows = s.execute(
        select(DuplicateGroup.representative_id, DuplicateMember.item_id)
        .join(DuplicateMember, DuplicateMember.group_id == DuplicateGroup.id)
        .where(DuplicateGroup.dataset_id == dataset_id)
        .order_by(DuplicateGroup.representative_id, DuplicateMember.item_id)
    )
    for rep, item in rows:
        out.setdefault(rep, [rep])
        if item != rep:
            out[rep].append(item)
    return out


@allow(Role.ANNOTATOR, Role.REVIEWER, Role.ADMIN)
def copies_of(
    db: Database, dataset: str, item_ids: list[int], *, actor: Actor = SYSTEM
) -> dict[int, list[int]]:
    """The copies in the pool of each item of ``dataset`` given (items without copies left out)."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        own = set(s.scalars(select(Item.id).where(Item.id.in_(item_ids), Item.dataset_id == ds.id)))
        return copies_in(s, own)


@dataclass(frozen=True)
class GroupView:
    """One duplicate group as the Ranking page and the CLI list it."""

    representative: str  # item ext id
    members: list[str]  # the other members' ext ids
    evidence: list[str]  # per other member: "exact" or "near (hash 3, cosine 0.991, pixels 1.8)"


@dataclass(frozen=True)
class DuplicateOverview:
    groups: int
    items: int
    largest: int
    listed: list[GroupView] = field(default_factory=list)


@allow(Role.ADMIN)
def duplicate_overview(
    db: Database, dataset: str, *, limit: int = 50, actor: Actor = SYSTEM
) -> DuplicateOverview:
    """The dataset's stored groups: how many, and the ``limit`` largest with their evidence."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        n, items, largest = s.execute(
            select(
                func.count(), func.coalesce(func.sum(DuplicateGroup.size), 0), func.max(DuplicateGroup.size)
            ).where(DuplicateGroup.dataset_id == ds.id)
        ).one()
        ids = list(
            s.scalars(
                select(DuplicateGroup.id)
                .where(DuplicateGroup.dataset_id == ds.id)
                .order_by(DuplicateGroup.size.desc(), DuplicateGroup.id)
                .limit(limit)
            )
        )
        member, item = DuplicateMember, aliased(Item)
        rows = s.execute(
            select(
                member.group_id, member.evidence, item.ext_id, member.hamming, member.cosine, member.pixels
            )
            .join(item, item.id == member.item_id)
            .where(member.group_id.in_(ids))
            .order_by(member.group_id, member.item_id)
        ).all()
    by_group: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        by_group[row[0]].append(tuple(row[1:]))
    listed = []
    for gid in ids:
        rep = next(r[1] for r in by_group[gid] if r[0] == "representative")
        others = [r for r in by_group[gid] if r[0] != "representative"]
        listed.append(GroupView(rep, [r[1] for r in others], [_evidence(*r) for r in others]))
    return DuplicateOverview(int(n), int(items), int(largest or 0), listed)


def _evidence(kind: str, _ext: str, hamming: int | None, cosine: float | None, pixels: float | None) -> str:
    if kind != "near":
        return str(kind)
    parts = [f"hash {hamming}"]
    if cosine is not None:
        parts.append(f"cosine {cosine:.3f}")
    parts.append(f"pixels {pixels:.1f}")
    return f"near ({', '.join(parts)})"


@dataclass(frozen=True)
class DuplicateScore:
    """Stored groups against the planted copies, as pairs of items in one group."""

    planted_pairs: int
    found_pairs: int
    true_pairs: int  # found and planted
    recall_by_transform: dict[str, float]  # share of copies grouped with their original

    @property
    def precision(self) -> float:
        return self.true_pairs / self.found_pairs if self.found_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.true_pairs / self.planted_pairs if self.planted_pairs else 1.0


def _pairs(groups: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    return {(a, b) for g in groups for a, b in combinations(sorted(set(g)), 2)}


@allow(Role.ADMIN)
def duplicate_score(db: Database, dataset: str, *, actor: Actor = SYSTEM) -> DuplicateScore:
    """Precision and recall of the stored groups over the demo's planted copies (``truth_path``).

    Raises:
        ValidationError: the dataset has no planted truth (only the demo has one).
    """
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        path = DatasetSettings.from_stored(ds.settings).truth_path
        if not path or not Path(path).is_file():
            raise ValidationError(f"dataset {dataset!r} has no planted truth (only the demo has truth.jsonl)")
        ext = dict(s.execute(select(Item.id, Item.ext_id).where(Item.dataset_id == ds.id)).all())
        groups = [[ext[i] for i in members] for members in dataset_groups(s, ds.id).values()]
    planted = truth_rows(path, "duplicate")
    families: dict[str, set[str]] = defaultdict(set)
    for row in planted:
        families[row["original_id"]] |= {row["original_id"], row["item_id"]}
    truth, found = _pairs(families.values()), _pairs(groups)
    group_of = {item: n for n, g in enumerate(groups) for item in g}
    by_transform: dict[str, list[bool]] = defaultdict(list)
    for row in planted:
        together = row["item_id"] in group_of and group_of[row["item_id"]] == group_of.get(row["original_id"])
        by_transform[row["transform"]].append(together)
    return DuplicateScore(
        len(truth),
        len(found),
        len(truth & found),
        {t: sum(v) / len(v) for t, v in sorted(by_transform.items())},
    )
