"""Creating blind studies: query quality (MCMR's double-blind study) and system preference (MERIT's).

- ``query_quality``: a trial is a target whose query group holds exactly one query of each of two
  sources (e.g. ``generated`` and ``human``). The rater sees the target (the items labelled
  positive for every query of the group, at most three) and the two queries, labelled only "A"
  and "B"; scores each on the study's rubric (1-5 per criterion) and states a preference A, B or
  tie. Which groups and queries are eligible is :mod:`services.study.eligible`'s; the sample
  defaults to all of them.
- ``system_preference``: a trial is a query and, from two or more systems (ranker runs of the
  dataset or TREC run files), each system's top-1 or top-3 results, merged so that an item several
  systems return is shown once, shuffled and labelled "Option 1..n". The rater picks the best.

The unblinded content of a trial lives in ``StudyTrial.payload`` and ``StudyAssignment.mapping``;
the design (raters, sides, option order, queue order) comes from :mod:`services.study.design`, all
drawn from the study's seed, so the same arguments give the same study.
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import Role, StudyKind, StudyStatus
from db.models import Dataset, User
from db.session import Database
from db.studies import Study, StudyAssignment, StudyTrial
from models.hashing import sha256_file
from services.core.auth import Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.study.admin import StudyInfo, info_of
from services.study.design import A, lay_out
from services.study.eligible import preference_eligible, quality_eligible
from services.study.rubric import DEFAULT_RUBRIC, Criterion, check_blind, check_rubric, rubric_config

log = logging.getLogger(__name__)

TOP_N = (1, 3)
MAX_SAMPLE = 10_000
NAME_RE = re.compile(r"^[\w .:-]{1,128}$")


@dataclass(frozen=True)
class CreateReport:
    study: StudyInfo
    sample: int | None  # asked for; None: every eligible one (the default)
    n_eligible: int  # groups (query quality) or queries (system preference) that could be sampled
    skipped: dict[str, int]  # why others could not, with how many
    load: dict[str, int]  # rater -> trials
    first_shown: dict[str, int]  # query quality: source -> assignments showing it as "A"


@dataclass
class _PlannedTrial:
    group_key: str | None
    query_id: int | None
    payload: dict[str, Any]
    authors: set[int]  # raters who may not have it: they wrote one of its queries


def _check_common(name: str, sample: int | None, raters_per_trial: int, compared: Sequence[str]) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError("a study name is 1-128 letters, digits, spaces, '.', ':', '_' or '-'")
    check_blind(name, compared, "the study name")
    if sample is not None and not 1 <= sample <= MAX_SAMPLE:
        raise ValidationError(f"the sample is 1 to {MAX_SAMPLE:,} trials")
    if raters_per_trial < 1:
        raise ValidationError("each trial needs at least one rater")
    return name


def _rater_users(s: Session, raters: Sequence[str] | None, raters_per_trial: int) -> list[User]:
    active = {u.name: u for u in s.scalars(select(User).where(User.is_active.is_(True)).order_by(User.name))}
    if raters:
        unknown = sorted(set(raters) - set(active))
        if unknown:
            raise ValidationError(f"not active users: {', '.join(unknown)}")
        chosen = [active[n] for n in sorted(set(raters))]
    else:
        chosen = list(active.values())
    if len(chosen) < raters_per_trial:
        raise ValidationError(
            f"{raters_per_trial} raters per trial needs at least {raters_per_trial} raters; {len(chosen)} chosen"
        )
    return chosen


def _write_study(
    s: Session,
    actor: Actor,
    *,
    ds: Dataset,
    name: str,
    kind: StudyKind,
    seed: int,
    config: dict[str, Any],
    planned: list[_PlannedTrial],
    raters: list[User],
    raters_per_trial: int,
) -> tuple[StudyInfo, dict[str, int], dict[str, int]]:
    """Store the study, its trials and its assignments; return its info, each rater's load and
    (query quality) how often each source is shown as "A"."""
    if s.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise ValidationError(f"a study named {name!r} exists already; choose another name")
    layout = lay_out(
        len(planned),
        [u.id for u in raters],
        raters_per_trial,
        [p.authors for p in planned],
        seed,
        sources=tuple(config["sources"]) if kind == StudyKind.QUERY_QUALITY else None,
        options=[p.payload["options"] for p in planned] if kind == StudyKind.SYSTEM_PREFERENCE else (),
    )
    study = Study(
        name=name,
        dataset_id=ds.id,
        kind=kind,
        status=StudyStatus.OPEN,
        seed=seed,
        # "raters_per_item" is the stored key of the per-trial count.
        config={**config, "raters": [u.name for u in raters], "raters_per_item": raters_per_trial},
        created_by_id=actor.id,
    )
    s.add(study)
    s.flush()
    trials = []
    for position, p in enumerate(planned):
        trial = StudyTrial(
            study_id=study.id,
            position=position,
            group_key=p.group_key,
            query_id=p.query_id,
            payload=p.payload,
        )
        s.add(trial)
        trials.append(trial)
    s.flush()
    for n in layout.insert_order:
        trial_n, rater_id = layout.pairs[n]
        s.add(
            StudyAssignment(
                trial_id=trials[trial_n].id,
                rater_id=rater_id,
                position=layout.positions[n],
                mapping=layout.mappings[n],
            )
        )
    s.flush()
    load = layout.load()
    first_shown = Counter(m[A] for m in layout.mappings) if kind == StudyKind.QUERY_QUALITY else {}
    return info_of(s, study), {u.name: load[u.id] for u in raters}, dict(first_shown)


@allow(Role.ADMIN)
def create_quality_study(
    db: Database,
    actor: Actor,
    *,
    dataset: str,
    name: str,
    sources: Sequence[str] = ("generated", "human"),
    sample: int | None = None,
    raters_per_trial: int = 3,
    raters: Sequence[str] | None = None,
    seed: int = 0,
    rubric: Sequence[Criterion] | None = None,
) -> CreateReport:
    """Create a query-quality study: targets whose group holds one query of each source.

    Args:
        dataset: the dataset whose query groups are sampled.
        name: the study's name (raters see it, so it may not name a source).
        sources: the two sources compared, e.g. ``("generated", "human")``.
        sample: how many targets to sample; None (the default) or more than are eligible: all.
        raters_per_trial: raters per target.
        raters: user names of the raters; default every active user.
        seed: drives the sample, the raters, the A/B sides and the queue order.
        rubric: up to three criteria; default :data:`~services.study.rubric.DEFAULT_RUBRIC`.

    Raises:
        ValidationError: bad arguments, no eligible group, or a trial with too few raters.
        NotFoundError: no such dataset.
    """
    sources = [str(x).strip() for x in sources if str(x).strip()]
    if len(sources) != 2 or sources[0] == sources[1]:
        raise ValidationError("a query-quality study compares exactly two different sources")
    name = _check_common(name, sample, raters_per_trial, sources)
    criteria = check_rubric(rubric or DEFAULT_RUBRIC, forbidden=sources)
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        eligible, skipped = quality_eligible(s, ds.id, sources)
        if not eligible:
            raise ValidationError(
                f"no query group of {dataset!r} holds one query of each of {', '.join(sources)} "
                "with a labelled target"
            )
        picked = random.Random(f"{seed}:sample").sample(eligible, min(sample or len(eligible), len(eligible)))
        picked.sort(key=lambda e: e[0])
        planned = [
            _PlannedTrial(
                key,
                None,
                {
                    "queries": {
                        src: {"id": q.id, "ext_id": q.ext_id, "text": q.text} for src, q in pair.items()
                    },
                    "targets": targets,
                },
                {q.author_id for q in pair.values() if q.author_id is not None},
            )
            for key, pair, targets in picked
        ]
        info, load, first_shown = _write_study(
            s,
            actor,
            ds=ds,
            name=name,
            kind=StudyKind.QUERY_QUALITY,
            seed=seed,
            config={"sources": sources, "rubric": rubric_config(criteria), "sample": sample},
            planned=planned,
            raters=_rater_users(s, raters, raters_per_trial),
            raters_per_trial=raters_per_trial,
        )
    log.info("study %s created: %d targets, %d assignments", name, info.n_trials, info.n_assignments)
    return CreateReport(info, sample, len(eligible), dict(skipped), load, first_shown)


@allow(Role.ADMIN)
def create_preference_study(
    db: Database,
    actor: Actor,
    *,
    dataset: str,
    name: str,
    systems: Sequence[str] = (),
    run_files: Mapping[str, Path] | None = None,
    top_n: int = 1,
    sample: int | None = None,
    raters_per_trial: int = 3,
    raters: Sequence[str] | None = None,
    seed: int = 0,
) -> CreateReport:
    """Create a system-preference study: a query and each system's top results, blind.

    Args:
        systems: names of ranker runs of the dataset (e.g. ``clip_image``, ``bm25``).
        run_files: more systems, as {name: path of a TREC run file}; query ids are the dataset's
            query ext ids, document ids its item ext ids.
        top_n: 1 or 3 results per system.
        The rest as for :func:`create_quality_study`.

    A query is eligible when every system returns something for it and the systems' results
    differ (with one result in all, there is nothing to choose).
    """
    run_files = dict(run_files or {})
    names = [str(x).strip() for x in systems if str(x).strip()] + list(run_files)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValidationError("a system-preference study compares two or more systems with distinct names")
    if top_n not in TOP_N:
        raise ValidationError(f"show each system's top {' or top '.join(map(str, TOP_N))}")
    name = _check_common(name, sample, raters_per_trial, names)
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        eligible, skipped = preference_eligible(s, ds.id, names, run_files, top_n)
        if not eligible:
            raise ValidationError("no query has results from every system that differ between systems")
        picked = random.Random(f"{seed}:sample").sample(eligible, min(sample or len(eligible), len(eligible)))
        picked.sort(key=lambda e: e[0].id)
        planned = [
            _PlannedTrial(
                q.group_key,
                q.id,
                {"query": {"id": q.id, "ext_id": q.ext_id, "text": q.text}, "options": options},
                {q.author_id} if q.author_id is not None else set(),
            )
            for q, options in picked
        ]
        config = {
            "systems": names,
            "top_n": top_n,
            "sample": sample,
            # Where a run came from, independent of where its file lies now.
            "run_files": {k: {"file": Path(v).name, "sha256": sha256_file(v)} for k, v in run_files.items()},
        }
        info, load, _ = _write_study(
            s,
            actor,
            ds=ds,
            name=name,
            kind=StudyKind.SYSTEM_PREFERENCE,
            seed=seed,
            config=config,
            planned=planned,
            raters=_rater_users(s, raters, raters_per_trial),
            raters_per_trial=raters_per_trial,
        )
    log.info("study %s created: %d queries, %d assignments", name, info.n_trials, info.n_assignments)
    return CreateReport(info, sample, len(eligible), dict(skipped), load, {})
