"""The dashboard's gold figures: each annotator's gold accuracy beside their estimated competence.

Gold accuracy is measured (:mod:`services.gold.scoring`); competence is estimated from all their
work by Dawid–Skene and MACE (:mod:`services.cleaning.crowd`), so the two can be read side by side:
an annotator the models trust but gold does not (or the reverse) is worth a look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from db.enums import Role
from db.session import Database
from services.cleaning.aggregation import DAWID_SKENE, MACE
from services.cleaning.crowd import fit_crowd
from services.cleaning.loading import load_data
from services.core.auth import SYSTEM, Actor, allow
from services.core.lookups import dataset_or_404
from services.core.memo import StampedCache
from services.core.work_stamp import work_stamp
from services.datasets.settings import DatasetSettings
from services.gold.scoring import KINDS, GoldScore, score_dataset
from services.ranking.search_version import ranking_version


@dataclass(frozen=True)
class GoldDashboard:
    dataset: str
    n_gold: int  # gold queries in the dataset
    rate: int  # the dataset's gold_rate (one in N; 0: none mixed in)
    threshold: int  # gold_warn_below, percent
    training: bool
    scores: list[GoldScore]
    rows: list[dict[str, Any]]  # one per annotator: accuracy, interval, competence, warning

    def kind_rows(self) -> list[dict[str, Any]]:
        """Long table: annotator, kind, right, chances, rate, low, high (for the chart)."""
        return [
            {
                "annotator": sc.annotator,
                "kind": kind,
                "right": sh.count,
                "chances": sh.n,
                "rate": sh.rate,
                "low": sh.low,
                "high": sh.high,
            }
            for sc in self.scores
            for kind, sh in sc.kinds.items()
            if sh.n
        ]


@allow(Role.ADMIN)
def gold_dashboard(db: Database, dataset: str, *, actor: Actor = SYSTEM) -> GoldDashboard:
    """Gold accuracy (with Wilson interval, gold queries seen, warning) and DS/MACE competence per annotator.

    Computed once per change of the dataset's work (submits, review decisions, gold, settings)
    and kept: fitting Dawid–Skene and MACE is the dearest figure of the dashboard.
    """
    with db.read() as s:
        ds_id = dataset_or_404(s, dataset).id
        # The candidates shown per query (a re-rank changes them) count in the crowd models too.
        key = (work_stamp(s, ds_id), ranking_version(s, ds_id))
    return _kept.get((db.url, ds_id), key, lambda: _compute(db, dataset, actor))


# Per (database, dataset), until the work stamp moves (services.core.memo).
_kept: StampedCache = StampedCache()


def _compute(db: Database, dataset: str, actor: Actor) -> GoldDashboard:
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        settings = DatasetSettings.from_stored(ds.settings)
        scores = score_dataset(s, ds.id, settings.gold_warn_below)
    _, data = load_data(db, dataset, actor=actor)
    competence: dict[str, dict[str, float | None]] = {}
    for model in (DAWID_SKENE, MACE):
        for c in fit_crowd(data, model).competence(data):
            competence.setdefault(c.annotator, {})[model] = c.items
    by_name = {sc.annotator: sc for sc in scores}
    rows = []
    for name in sorted(set(by_name) | set(competence)):
        sc = by_name.get(name)
        row: dict[str, Any] = {
            "annotator": name,
            "gold queries": sc.gold_queries if sc else 0,
            "gold accuracy": sc.overall.rate if sc else None,
            "low": sc.overall.low if sc else None,
            "high": sc.overall.high if sc else None,
            "Dawid–Skene competence": competence.get(name, {}).get(DAWID_SKENE),
            "MACE competence": competence.get(name, {}).get(MACE),
            "warning": bool(sc and sc.warning),
        }
        for kind in KINDS:
            row[kind] = sc.kinds[kind].rate if sc and sc.kinds[kind].n else None
        rows.append(row)
    return GoldDashboard(
        dataset=dataset,
        n_gold=len(data.gold),
        rate=settings.gold_rate,
        threshold=settings.gold_warn_below,
        training=settings.gold_training,
        scores=scores,
        rows=rows,
    )
