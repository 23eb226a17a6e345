"""The results of a closed study, unblinded: scores, preferences, tests, agreement, every answer.

While a study is open its scores stay sealed: :func:`quality_results`, :func:`preference_results`,
:func:`study_results` and :func:`responses_frame` raise :class:`ResultsSealed`.

In a system-preference study a pick is credited to the system that ranked the chosen item highest;
systems that ranked it equally high (e.g. two systems with the same top-1) are each credited, and
the results count such shared picks (:func:`credited`). The tests against equal preference, overall
and pair by pair with Wilson intervals, are :func:`services.study.stats.preference_tests`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import Role, StudyKind, StudyStatus
from db.models import Dataset, Item, User
from db.session import Database
from db.studies import Study, StudyAssignment, StudyResponse, StudyTrial
from services.agreement import stats as agreement_stats
from services.agreement.stats import Coefficient
from services.core.auth import Actor, allow
from services.core.errors import PermissionDenied, ValidationError
from services.core.lookups import study_or_404
from services.study.design import TIE, A, B, option_label, option_number
from services.study.rubric import SCALE, rubric_of
from services.study.stats import (
    N_RESAMPLES,
    PairTest,
    Share,
    StatTest,
    binomial_test,
    mean_ci,
    preference_tests,
    share,
    wilcoxon_test,
)


class ResultsSealed(PermissionDenied):
    """The study is open: its scores stay sealed until it is closed."""


@dataclass(frozen=True)
class SourceScores:
    source: str
    criterion: str
    n: int  # ratings
    mean: float | None
    low: float | None
    high: float | None
    distribution: dict[int, int]  # score -> ratings


@dataclass(frozen=True)
class PairedDifference:
    """Per trial, the first source's mean score minus the second's, over the trial's raters."""

    criterion: str
    first: str
    second: str
    n_trials: int
    mean: float | None
    low: float | None
    high: float | None
    test: StatTest


@dataclass(frozen=True)
class QualityResults:
    study: str
    dataset: str
    sources: tuple[str, str]
    criteria: tuple[str, ...]
    n_trials: int
    n_responses: int
    n_raters: int
    scores: list[SourceScores]
    paired: list[PairedDifference]
    preference: list[Share]  # each source, then tie; out of every answer
    preference_test: StatTest  # first source against second, ties left out
    agreement: dict[str, Coefficient]  # criterion -> ordinal alpha; "preference" -> nominal alpha
    first_shown: Share  # answers preferring the query shown first ("A"), ties left out
    first_shown_test: StatTest


@dataclass(frozen=True)
class PreferenceResults:
    study: str
    dataset: str
    systems: tuple[str, ...]
    top_n: int
    n_trials: int
    n_responses: int
    n_raters: int
    selections: list[Share]  # per system: picks credited to it, out of every answer
    n_shared: int  # picks credited to two or more systems (they ranked the item equally high)
    by_position: list[Share]  # picks per display position ("Option 1" is shown first)
    agreement: Coefficient  # nominal alpha over the chosen item
    # Against equal preference: exact binomial (two systems) or chi-square goodness of fit (more);
    # and every pair head to head, exact binomial with Holm's correction (services.study.stats).
    overall_test: StatTest
    pairwise: list[PairTest]


@dataclass
class _Row:
    trial: StudyTrial
    assignment: StudyAssignment
    response: StudyResponse
    rater: str


def _closed_rows(s: Session, name: str) -> tuple[Study, list[_Row], int]:
    study = study_or_404(s, name)
    if study.status != StudyStatus.CLOSED:
        raise ResultsSealed(
            f"the study {name!r} is open: its scores stay sealed until it is closed (progress is shown meanwhile)"
        )
    rows = [
        _Row(trial, a, r, rater)
        for trial, a, r, rater in s.execute(
            select(StudyTrial, StudyAssignment, StudyResponse, User.name)
            .join(StudyAssignment, StudyAssignment.trial_id == StudyTrial.id)
            .join(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
            .join(User, User.id == StudyAssignment.rater_id)
            .where(StudyTrial.study_id == study.id)
            .order_by(StudyTrial.position, User.name)
        )
    ]
    n_trials = s.scalar(select(func.count()).select_from(StudyTrial).where(StudyTrial.study_id == study.id))
    return study, rows, n_trials or 0


@allow(Role.ADMIN)
def quality_results(
    db: Database, actor: Actor, name: str, *, n_resamples: int = N_RESAMPLES
) -> QualityResults:
    """The figures of a closed query-quality study, unblinded.

    Raises:
        ResultsSealed: the study is still open.
    """
    with db.read() as s:
        study, rows, n_trials = _closed_rows(s, name)
        dataset = s.get(Dataset, study.dataset_id).name
    if study.kind != StudyKind.QUERY_QUALITY:
        raise ValidationError(f"{name!r} is a system-preference study")
    first, second = study.config["sources"]
    criteria = tuple(c.name for c in rubric_of(study.config))
    raters = sorted({r.rater for r in rows})

    # ratings[criterion][source][trial position] -> {rater: score}
    ratings: dict[str, dict[str, dict[int, dict[str, int]]]] = {
        c: {first: defaultdict(dict), second: defaultdict(dict)} for c in criteria
    }
    preferred: dict[int, dict[str, str]] = defaultdict(dict)
    for row in rows:
        mapping, response = row.response.mapping, row.response
        for c in criteria:
            for label in (A, B):
                ratings[c][mapping[label]][row.trial.position][row.rater] = response.scores[c][label]
        preferred[row.trial.position][row.rater] = (
            mapping[response.preference] if response.preference in (A, B) else TIE
        )

    scores: list[SourceScores] = []
    paired: list[PairedDifference] = []
    agreement: dict[str, Coefficient] = {}
    for c in criteria:
        for source in (first, second):
            per_trial = ratings[c][source]
            values = [v for by_rater in per_trial.values() for v in by_rater.values()]
            ci = mean_ci(
                [sum(d.values()) for d in per_trial.values()],
                [len(d) for d in per_trial.values()],
                seed=study.seed,
                n_resamples=n_resamples,
            )
            scores.append(
                SourceScores(
                    source,
                    c,
                    len(values),
                    float(np.mean(values)) if values else None,
                    ci[0] if ci else None,
                    ci[1] if ci else None,
                    {k: values.count(k) for k in SCALE},
                )
            )
        trials = sorted(ratings[c][first])
        diffs = [
            float(np.mean([ratings[c][first][i][r] - ratings[c][second][i][r] for r in ratings[c][first][i]]))
            for i in trials
        ]
        ci = mean_ci(diffs, [1] * len(diffs), seed=study.seed, n_resamples=n_resamples)
        paired.append(
            PairedDifference(
                c,
                first,
                second,
                len(diffs),
                float(np.mean(diffs)) if diffs else None,
                ci[0] if ci else None,
                ci[1] if ci else None,
                wilcoxon_test(diffs),
            )
        )
        units = [[ratings[c][source][i].get(r) for r in raters] for i in trials for source in (first, second)]
        agreement[c] = agreement_stats.krippendorff_alpha(units, level="ordinal", categories=list(SCALE))
    units = [[preferred[i].get(r) for r in raters] for i in sorted(preferred)]
    agreement["preference"] = agreement_stats.krippendorff_alpha(units, level="nominal")

    answers = Counter(v for by_rater in preferred.values() for v in by_rater.values())
    n = len(rows)
    decisive = answers[first] + answers[second]
    shown_first = sum(1 for r in rows if r.response.preference == A)
    return QualityResults(
        study=study.name,
        dataset=dataset,
        sources=(first, second),
        criteria=criteria,
        n_trials=n_trials,
        n_responses=n,
        n_raters=len(raters),
        scores=scores,
        paired=paired,
        preference=[
            share(first, answers[first], n),
            share(second, answers[second], n),
            share(TIE, answers[TIE], n),
        ],
        preference_test=binomial_test(answers[first], decisive),
        agreement=agreement,
        first_shown=share("first shown (A)", shown_first, decisive),
        first_shown_test=binomial_test(shown_first, decisive),
    )


def credited(ranks: Mapping[str, int]) -> list[str]:
    """The systems a pick is credited to: those that ranked the chosen item highest."""
    best = min(ranks.values())
    return sorted(system for system, rank in ranks.items() if rank == best)


@allow(Role.ADMIN)
def preference_results(
    db: Database, actor: Actor, name: str, *, n_resamples: int = N_RESAMPLES
) -> PreferenceResults:
    """The figures of a closed system-preference study: selection rate per system.

    Raises:
        ResultsSealed: the study is still open.
    """
    with db.read() as s:
        study, rows, n_trials = _closed_rows(s, name)
        dataset = s.get(Dataset, study.dataset_id).name
    if study.kind != StudyKind.SYSTEM_PREFERENCE:
        raise ValidationError(f"{name!r} is a query-quality study")
    systems = tuple(study.config["systems"])
    raters = sorted({r.rater for r in rows})
    picks: Counter[str] = Counter()
    positions: Counter[int] = Counter()
    n_shared = 0
    credits: list[set[str]] = []
    chosen: dict[int, dict[str, int]] = defaultdict(dict)
    max_options = 0
    for row in rows:
        option = row.response.mapping[row.response.preference]
        winners = credited(option["ranks"])
        picks.update(winners)
        credits.append(set(winners))
        n_shared += len(winners) > 1
        positions[option_number(row.response.preference)] += 1
        max_options = max(max_options, len(row.response.mapping))
        chosen[row.trial.position][row.rater] = option["item_id"]
    n = len(rows)
    selections = sorted((share(x, picks[x], n) for x in systems), key=lambda sh: (-sh.count, sh.label))
    units = [[chosen[i].get(r) for r in raters] for i in sorted(chosen)]
    overall, pairwise = preference_tests(credits, systems, seed=study.seed, n_resamples=n_resamples)
    return PreferenceResults(
        study=study.name,
        dataset=dataset,
        systems=systems,
        top_n=int(study.config.get("top_n", 1)),
        n_trials=n_trials,
        n_responses=n,
        n_raters=len(raters),
        selections=selections,
        n_shared=n_shared,
        by_position=[share(option_label(k), positions[k], n) for k in range(1, max_options + 1)],
        agreement=agreement_stats.krippendorff_alpha(units, level="nominal"),
        overall_test=overall,
        pairwise=pairwise,
    )


@allow(Role.ADMIN)
def study_results(db: Database, actor: Actor, name: str) -> QualityResults | PreferenceResults:
    """The results of a closed study of either kind."""
    with db.read() as s:
        kind = study_or_404(s, name).kind
    if kind == StudyKind.QUERY_QUALITY:
        return quality_results(db, actor, name)
    return preference_results(db, actor, name)


@allow(Role.ADMIN)
def responses_frame(db: Database, actor: Actor, name: str) -> pd.DataFrame:
    """Every answer of a closed study, one row each, with the unblinded mapping."""
    with db.read() as s:
        study, rows, _ = _closed_rows(s, name)
        ext_ids = dict(
            s.execute(select(Item.id, Item.ext_id).where(Item.dataset_id == study.dataset_id)).all()
        )
    records = []
    for row in rows:
        r, mapping = row.response, row.response.mapping
        record: dict[str, Any] = {
            "study": study.name,
            "trial": row.trial.position + 1,
            "group": row.trial.group_key,
            "rater": row.rater,
            "queue_position": row.assignment.position + 1,
        }
        if study.kind == StudyKind.QUERY_QUALITY:
            queries = row.trial.payload["queries"]
            record.update(
                {
                    "A_source": mapping[A],
                    "B_source": mapping[B],
                    "A_query": queries[mapping[A]]["ext_id"],
                    "B_query": queries[mapping[B]]["ext_id"],
                }
            )
            for c in rubric_of(study.config):
                record[f"{c.name}_A"] = r.scores[c.name][A]
                record[f"{c.name}_B"] = r.scores[c.name][B]
                for label in (A, B):
                    record[f"{c.name}_{mapping[label]}"] = r.scores[c.name][label]
            record["preference"] = r.preference
            record["preferred_source"] = mapping[r.preference] if r.preference in (A, B) else TIE
        else:
            option = mapping[r.preference]
            record.update(
                {
                    "query": row.trial.payload["query"]["ext_id"],
                    "choice": r.preference,
                    "chosen_item": ext_ids.get(option["item_id"]),
                    "credited": ",".join(credited(option["ranks"])),
                    "options": "; ".join(
                        f"{label}={ext_ids.get(o['item_id'])} "
                        + ",".join(f"{k}#{v}" for k, v in sorted(o["ranks"].items()))
                        for label, o in sorted(mapping.items(), key=lambda kv: option_number(kv[0]))
                    ),
                }
            )
        record["comment"] = r.comment
        record["answered_at"] = r.created_at.isoformat() if r.created_at else None
        records.append(record)
    return pd.DataFrame.from_records(records)
