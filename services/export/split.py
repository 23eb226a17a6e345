"""The split an export writes: the chosen queries with their decisions, and the pool they rank.

Items come sorted by ext id; images are named by content (``images/<sha256>.<ext>``, relative to
the export root) and only images the media store holds get a name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from db.enums import ImageStatus, Role
from db.models import Candidate, Dataset, Item, Query, QueryRef, RankerRun
from db.session import Database
from db.triage import QueryTriage
from services.cleaning.decisions import ConsensusResult, ItemDecision, QueryOutcome
from services.cleaning.sampling import Sample
from services.core.auth import SYSTEM, Actor, allow
from services.export.folder import to_json
from services.export.options import ExportOptions
from services.ranking.generations import active_runs
from services.triage.views import shortcuts_by_query

IMAGES = "images"


@dataclass
class Pool:
    items: list[Any]  # Item rows as named tuples, sorted by ext id
    refs: dict[int, list[Any]]  # query id -> its refs by position
    item_ext: dict[int, str]
    item_image: dict[str, str | None]  # item ext id -> path relative to the export root
    dataset: Any
    shortcuts: dict[int, str] = field(default_factory=dict)  # query id -> modality shortcut (triaged ones)
    shortcut_rank: int | None = None  # the r those were measured at


def image_name(sha: str, ext: str | None) -> str:
    return f"{IMAGES}/{sha}.{ext or 'jpg'}"


@allow(Role.ADMIN)
def load_pool(db: Database, dataset_id: int, query_ids: Sequence[int], *, actor: Actor = SYSTEM) -> Pool:
    """The dataset's pool (every item, sorted by ext id) and the references of ``query_ids``."""
    with db.read() as s:
        ds = s.execute(
            select(Dataset.name, Dataset.source_format, Dataset.created_at).where(Dataset.id == dataset_id)
        ).one()
        items = s.execute(
            select(
                Item.id,
                Item.ext_id,
                Item.title,
                Item.text,
                Item.category,
                Item.language,
                Item.attributes,
                Item.image_ref,
                Item.image_status,
                Item.image_sha256,
                Item.image_ext,
            )
            .where(Item.dataset_id == dataset_id)
            .order_by(Item.ext_id)
        ).all()
        refs: dict[int, list[Any]] = defaultdict(list)
        wanted = set(query_ids)
        for ref in s.execute(
            select(
                QueryRef.query_id,
                QueryRef.position,
                QueryRef.item_id,
                QueryRef.image_ref,
                QueryRef.image_status,
                QueryRef.image_sha256,
                QueryRef.image_ext,
            )
            .join(Query, Query.id == QueryRef.query_id)
            .where(Query.dataset_id == dataset_id)
            .order_by(QueryRef.query_id, QueryRef.position)
        ):
            if ref.query_id in wanted:
                refs[ref.query_id].append(ref)
        shortcuts = shortcuts_by_query(s, dataset_id)
        shortcut_rank = s.scalar(
            select(func.max(QueryTriage.shortcut_rank))
            .join(Query, Query.id == QueryTriage.query_id)
            .where(Query.dataset_id == dataset_id)
        )
    item_image = {
        it.ext_id: image_name(it.image_sha256, it.image_ext)
        if it.image_status == ImageStatus.OK and it.image_sha256
        else None
        for it in items
    }
    return Pool(items, refs, {it.id: it.ext_id for it in items}, item_image, ds, shortcuts, shortcut_rank)


#: A stored ranking as the TREC run writer needs it: query ext id -> item ext ids, best first.
Ranking = dict[str, list[str]]


@allow(Role.ADMIN)
def load_runs(
    db: Database, dataset_id: int, query_ids: Sequence[int], *, actor: Actor = SYSTEM
) -> dict[str, Ranking]:
    """Every stored ranking of the dataset (each ranker's run and the pooled one), by run name,
    over ``query_ids`` only: the exported queries."""
    wanted = set(query_ids)
    runs: dict[str, Ranking] = {}
    with db.read() as s:
        for run_id, name in s.execute(
            select(RankerRun.id, RankerRun.name).where(active_runs(dataset_id)).order_by(RankerRun.name)
        ):
            ranking: Ranking = defaultdict(list)
            for query_id, query, item in s.execute(
                select(Candidate.query_id, Query.ext_id, Item.ext_id)
                .join(Query, Query.id == Candidate.query_id)
                .join(Item, Item.id == Candidate.item_id)
                .where(Candidate.run_id == run_id)
                .order_by(Query.ext_id, Candidate.rank)
            ):
                if query_id in wanted:
                    ranking[query].append(item)
            runs[name] = dict(ranking)
    return runs


@dataclass
class Split:
    """The queries to write and their qrels, as the writers need them."""

    queries: list[QueryOutcome]  # sorted by ext id
    consensus: ConsensusResult
    sample: Sample | None
    pool: Pool
    options: ExportOptions
    runs: dict[str, Ranking] = field(default_factory=dict)  # the stored rankings, by run name
    copies: Any = None  # services.export.duplicates.CopyReport: copies of positives, what was done

    def qrels(self) -> list[tuple[str, str, int]]:
        """(query, item, score) sorted: positives 1, judged non-relevant 0."""
        rows = []
        for q in self.queries:
            rows += [(q.ext_id, d.ext_id, 1) for d in q.positives]
            rows += [(q.ext_id, ext, 0) for ext in self.zero(q)]
        return sorted(rows)

    @staticmethod
    def zero(q: QueryOutcome) -> list[str]:
        return sorted({d.ext_id for d in q.removed} | set(q.judged_non_relevant))

    def ref_items(self, q: QueryOutcome) -> list[str]:
        return [self.pool.item_ext[r.item_id] for r in self.pool.refs.get(q.query_id, []) if r.item_id]

    def ref_images(self, q: QueryOutcome) -> list[Any]:
        return [r for r in self.pool.refs.get(q.query_id, []) if r.item_id is None]


def ref_image_path(ref: Any) -> str | None:
    if ref.image_status == ImageStatus.OK and ref.image_sha256:
        return image_name(ref.image_sha256, ref.image_ext)
    return None


def provenance_text(decision: ItemDecision) -> str:
    """Who added a positive and how they found it, one readable phrase per annotator."""
    return "; ".join(a.describe() for a in decision.additions)


def provenance_json(decision: ItemDecision) -> str:
    return to_json([{"by": a.by, "provenance": a.provenance, "detail": a.detail} for a in decision.additions])
