"""Generations of a dataset's ranker runs: readers see one, a re-rank writes the next beside it.

A re-rank never replaces runs in one transaction (that held SQLite's write lock for minutes at
100,000 items). It takes the next generation number and creates its run rows
(:func:`begin_generation`), writes their candidates in short batches (:mod:`db.bulk`), then points
the dataset at the new generation in one short transaction (:func:`switch_generation`) and
deletes the old one in batches (:func:`delete_generations`). Readers see the old candidates until
the switch and the new ones after it, never a mix.

Every reader of runs or candidates filters through :func:`active_runs` (or :func:`pooled_run`,
built on it), so none forgets the generation. Caches of what the candidates are key on
:func:`ranking_version`, which changes at every switch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, ScalarSelect, and_, func, select, update
from sqlalchemy.orm import Session

from db.bulk import AfterBatch, BatchSizer, delete_by_keys
from db.enums import Role, RunKind
from db.models import Candidate, Dataset, Query, RankerRun
from db.session import Database
from services.core.auth import SYSTEM, Actor, allow

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- readers


def active_generation(dataset_id: int | ColumnElement[int]) -> ScalarSelect[int]:
    """The generation readers of ``dataset_id`` see, as a scalar subquery."""
    return select(Dataset.active_generation).where(Dataset.id == dataset_id).scalar_subquery()


def active_runs(dataset_id: int) -> ColumnElement[bool]:
    """The condition on :class:`RankerRun` that keeps the dataset's runs readers may see.

    Example:
        >>> s.scalars(select(RankerRun.name).where(active_runs(ds.id)))
    """
    return and_(RankerRun.dataset_id == dataset_id, RankerRun.generation == active_generation(dataset_id))


def pooled_run(dataset_id: int) -> ScalarSelect[int]:
    """The id of the dataset's visible pooled run (the candidates annotators see), as a subquery.

    Used inside the statement that reads candidates (``Candidate.run_id == pooled_run(id)``), so
    the run and its rows are read together: a switch between two statements cannot tear them.
    """
    return (
        select(RankerRun.id)
        .where(active_runs(dataset_id), RankerRun.kind == RunKind.POOLED)
        .order_by(RankerRun.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def ranking_version(s: Session, dataset_id: int) -> tuple[int, int, float]:
    """A value that changes whenever the dataset's visible candidates change (a switch).

    ``(dataset id, active generation, dataset creation time)``: the creation time tells apart a
    dataset that reused the id of a deleted one. A dataset that does not exist gives
    ``(dataset_id, -1, 0.0)``.
    """
    row = s.execute(
        select(Dataset.active_generation, Dataset.created_at).where(Dataset.id == dataset_id)
    ).first()
    if row is None:
        return (dataset_id, -1, 0.0)
    return (dataset_id, row.active_generation, row.created_at.timestamp())


# --------------------------------------------------------------------------- writers


@allow(Role.ADMIN)
def begin_generation(
    db: Database, dataset_id: int, runs: Sequence[tuple[str, RunKind, dict]], *, actor: Actor = SYSTEM
) -> tuple[int, dict[str, int]]:
    """Take the dataset's next generation and create its (empty) runs in one short transaction.

    Args:
        runs: ``(name, kind, params)`` of every run the generation will hold.

    Returns:
        The generation number and the id of each run by name.
    """
    with db.write() as s:
        newest = s.scalar(select(func.max(RankerRun.generation)).where(RankerRun.dataset_id == dataset_id))
        active = s.scalar(select(Dataset.active_generation).where(Dataset.id == dataset_id)) or 0
        generation = max(newest or 0, active) + 1
        rows = [
            RankerRun(dataset_id=dataset_id, name=name, kind=kind, params=params, generation=generation)
            for name, kind, params in runs
        ]
        s.add_all(rows)
        s.flush()
        return generation, {r.name: r.id for r in rows}


@allow(Role.ADMIN)
def switch_generation(
    db: Database, dataset_id: int, generation: int, run_ids: Iterable[int], *, actor: Actor = SYSTEM
) -> bool:
    """Make ``generation`` the one readers see, in one short transaction.

    Only a newer generation replaces the active one: a ranking that finishes after a later one
    switched loses (returns False) and its runs are the caller's to delete.

    Raises:
        RuntimeError: a run of the generation is gone (a ranking took this one's job for dead
            and deleted its rows); the active generation stays as it was.
    """
    wanted = set(run_ids)
    with db.write() as s:
        found = set(
            s.scalars(
                select(RankerRun.id).where(
                    RankerRun.id.in_(wanted),
                    RankerRun.dataset_id == dataset_id,
                    RankerRun.generation == generation,
                )
            )
        )
        if found != wanted:
            raise RuntimeError(
                f"generation {generation} of dataset {dataset_id} lost runs {sorted(wanted - found)} "
                "while it was written (another ranking deleted it); nothing was switched"
            )
        switched = s.execute(
            update(Dataset)
            .where(Dataset.id == dataset_id, Dataset.active_generation < generation)
            .values(active_generation=generation)
        ).rowcount
    log.info("dataset %d: generation %d %s", dataset_id, generation, "active" if switched else "superseded")
    return bool(switched)


@allow(Role.ADMIN)
def inactive_generations(
    db: Database, dataset_id: int, *, keep: Iterable[int] = (), actor: Actor = SYSTEM
) -> list[int]:
    """Generations of the dataset's runs that readers do not see, less ``keep``."""
    with db.read() as s:
        active = s.scalar(select(Dataset.active_generation).where(Dataset.id == dataset_id))
        found = s.scalars(
            select(RankerRun.generation).where(RankerRun.dataset_id == dataset_id).distinct()
        ).all()
    return sorted(set(found) - {active} - set(keep))


@allow(Role.ADMIN)
def delete_generations(
    db: Database,
    dataset_id: int,
    generations: Sequence[int],
    *,
    sizer: BatchSizer | None = None,
    after_batch: AfterBatch | None = None,
    actor: Actor = SYSTEM,
) -> int:
    """Delete the runs of ``generations`` and their candidates in short transactions.

    The active generation is never deleted (it is skipped if named). Candidates go by slices of
    query ids over the ``(run_id, query_id, rank)`` index, then the run rows. Safe to stop at any
    point and to run again.

    Returns:
        Candidate rows deleted.
    """
    with db.read() as s:
        active = s.scalar(select(Dataset.active_generation).where(Dataset.id == dataset_id))
        run_ids = s.scalars(
            select(RankerRun.id).where(
                RankerRun.dataset_id == dataset_id,
                RankerRun.generation.in_([g for g in generations if g != active]),
            )
        ).all()
        query_ids = s.scalars(select(Query.id).where(Query.dataset_id == dataset_id).order_by(Query.id)).all()
    if not run_ids:
        return 0
    table = Candidate.__table__
    deleted = delete_by_keys(
        db,
        table,
        table.c.query_id,
        query_ids,
        where=[table.c.run_id.in_(run_ids)],
        sizer=sizer,
        after_batch=after_batch,
    )
    with db.write() as s:  # no candidates are left, so the runs go at once (nothing cascades)
        guard = RankerRun.generation != active_generation(dataset_id)
        s.execute(RankerRun.__table__.delete().where(RankerRun.id.in_(run_ids), guard))
    return deleted
