"""Following blind studies as an admin: settings and counts, never scores, and closing.

Two kinds of study share one machinery: an admin creates a study (:mod:`services.study.create`),
which samples its trials and gives each trial to ``raters_per_trial`` raters; raters answer on the
Rate page (:mod:`services.study.rating`); the admin closes the study, which locks it and unseals
the results (:mod:`services.study.results`).

While a study is open an admin gets progress counts only (:func:`study_progress`); closing locks
the study.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import Role, StudyStatus
from db.models import Dataset, Query, RankerRun, User, utcnow
from db.session import Database
from db.studies import Study, StudyAssignment, StudyResponse, StudyTrial
from services.core.auth import Actor, allow
from services.core.lookups import dataset_or_404, live_dataset, study_or_404
from services.ranking.generations import active_runs
from services.study.rubric import Criterion, rubric_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyInfo:
    """A study as an admin sees it: settings and counts, never scores."""

    name: str
    kind: str
    dataset: str
    status: str
    seed: int
    compared: tuple[str, ...]  # sources (query quality) or systems (system preference)
    rubric: tuple[Criterion, ...]
    top_n: int | None
    raters: tuple[str, ...]
    raters_per_trial: int
    n_trials: int
    n_assignments: int
    n_answered: int
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class RaterProgress:
    rater: str
    answered: int
    total: int


@dataclass(frozen=True)
class StudyProgress:
    """Counts only: what an admin may see of an open study."""

    study: str
    status: str
    n_trials: int
    n_assignments: int
    n_answered: int
    raters: list[RaterProgress]


def info_of(s: Session, study: Study) -> StudyInfo:
    """A study's settings and counts."""
    config = study.config or {}
    n_trials = s.scalar(select(func.count()).select_from(StudyTrial).where(StudyTrial.study_id == study.id))
    n_assignments, n_answered = s.execute(
        select(func.count(StudyAssignment.id), func.count(StudyResponse.id))
        .select_from(StudyAssignment)
        .join(StudyTrial, StudyTrial.id == StudyAssignment.trial_id)
        .outerjoin(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
        .where(StudyTrial.study_id == study.id)
    ).one()
    return StudyInfo(
        name=study.name,
        kind=study.kind,
        dataset=s.get(Dataset, study.dataset_id).name,
        status=study.status,
        seed=study.seed,
        compared=tuple(config.get("sources") or config.get("systems") or ()),
        rubric=rubric_of(config),
        top_n=config.get("top_n"),
        raters=tuple(config.get("raters", ())),
        raters_per_trial=int(config.get("raters_per_item", 0)),  # the stored key
        n_trials=n_trials or 0,
        n_assignments=n_assignments or 0,
        n_answered=n_answered or 0,
        created_at=study.created_at,
        closed_at=study.closed_at,
    )


@allow(Role.ADMIN)
def dataset_sources(db: Database, actor: Actor, dataset: str) -> dict[str, int]:
    """Sources of the dataset's grouped queries, with how many groups hold one of each."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        rows = s.execute(
            select(Query.source, func.count(func.distinct(Query.group_key)))
            .where(Query.dataset_id == ds.id, Query.group_key.is_not(None), Query.source.is_not(None))
            .group_by(Query.source)
            .order_by(Query.source)
        ).all()
        return {source: n for source, n in rows}


@allow(Role.ADMIN)
def dataset_systems(db: Database, actor: Actor, dataset: str) -> list[str]:
    """Names of the dataset's rankings (ranker runs, pooled and imported runs)."""
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        return list(s.scalars(select(RankerRun.name).where(active_runs(ds.id)).order_by(RankerRun.name)))


@allow(Role.ADMIN)
def list_studies(db: Database, actor: Actor) -> list[StudyInfo]:
    with db.read() as s:
        studies = s.scalars(
            select(Study)
            .join(Dataset, Dataset.id == Study.dataset_id)
            .where(live_dataset())
            .order_by(Study.created_at.desc(), Study.id)
        )
        return [info_of(s, st) for st in studies]


@allow(Role.ADMIN)
def study_info(db: Database, actor: Actor, name: str) -> StudyInfo:
    with db.read() as s:
        return info_of(s, study_or_404(s, name))


@allow(Role.ADMIN)
def study_progress(db: Database, actor: Actor, name: str) -> StudyProgress:
    """How many answers each rater has given: counts only, open or closed."""
    with db.read() as s:
        study = study_or_404(s, name)
        rows = s.execute(
            select(User.name, func.count(StudyAssignment.id), func.count(StudyResponse.id))
            .select_from(StudyAssignment)
            .join(StudyTrial, StudyTrial.id == StudyAssignment.trial_id)
            .join(User, User.id == StudyAssignment.rater_id)
            .outerjoin(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
            .where(StudyTrial.study_id == study.id)
            .group_by(User.name)
            .order_by(User.name)
        ).all()
        info = info_of(s, study)
        return StudyProgress(
            study=study.name,
            status=study.status,
            n_trials=info.n_trials,
            n_assignments=info.n_assignments,
            n_answered=info.n_answered,
            raters=[RaterProgress(rater, answered, total) for rater, total, answered in rows],
        )


@allow(Role.ADMIN)
def close_study(db: Database, actor: Actor, name: str) -> StudyInfo:
    """Close a study: no more answers, and its results are unsealed. Closing twice is harmless."""
    with db.write() as s:
        study = study_or_404(s, name, lock=True)
        if study.status != StudyStatus.CLOSED:
            study.status = StudyStatus.CLOSED
            study.closed_at = utcnow()
            log.info("study %s closed by %s", name, actor.name)
        s.flush()
        return info_of(s, study)
