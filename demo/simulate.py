"""A simulated crowd: annotators of known, differing skill working a demo dataset through the services.

Each simulated annotator is a :class:`Profile` — how likely they are to confirm a true labelled
positive, catch a wrong one, tick a true positive shown among the candidates, tick a non-relevant
candidate, and reject a bad or a good query. They get assignments like anyone
(:func:`services.datasets.assignment.assign`, gold mixed in at the dataset's rate), open each
query with :func:`services.annotation.task.load_task` (seeing only the positives and candidates a
person would see) and submit with :func:`services.annotation.submit.submit`, deciding against the
demo's planted truth (``truth.jsonl``). Every draw comes from one seeded generator per annotator,
so a seed gives the same annotations.

:func:`true_skill` measures afterwards how often each annotator's votes (as the aggregation
models see them, :mod:`services.cleaning.crowd`) agree with the planted truth: the skill the
models' competence estimates should rank.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from db.enums import Role
from db.models import User
from db.session import Database
from services.annotation.queue import next_assignment
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import load_task
from services.cleaning.aggregation import DAWID_SKENE, MACE
from services.cleaning.crowd import fit_crowd, item_observations, query_observations
from services.cleaning.loading import load_data
from services.core.auth import Actor, add_user, generate_password
from services.core.errors import ValidationError
from services.core.lookups import dataset_or_404
from services.datasets.assignment import assign
from services.datasets.settings import DatasetSettings
from services.datasets.truth import truth_rows


@dataclass(frozen=True)
class Profile:
    """How a simulated annotator behaves (each a probability)."""

    name: str
    confirm: float  # label a true labelled positive relevant
    catch: float  # label a wrong labelled positive not relevant
    find: float  # tick a true positive shown among the candidates
    false_add: float  # tick a shown candidate that is not relevant
    reject_bad: float  # reject a bad query
    reject_good: float  # reject a good query


PROFILES = (
    Profile("careful", 0.97, 0.92, 0.85, 0.002, 0.92, 0.02),
    Profile("rubber-stamper", 1.0, 0.05, 0.05, 0.0, 0.05, 0.0),
    Profile("never-adds", 0.93, 0.8, 0.0, 0.0, 0.7, 0.04),
    Profile("good", 0.9, 0.75, 0.6, 0.005, 0.75, 0.05),
    Profile("sloppy", 0.75, 0.5, 0.35, 0.03, 0.4, 0.1),
    Profile("random-clicker", 0.5, 0.5, 0.3, 0.08, 0.3, 0.3),
)


@dataclass(frozen=True)
class SimulatedAnnotator:
    name: str  # the user, ``sim-<profile>`` (a number added past the first round of profiles)
    profile: Profile
    submitted: int


@dataclass(frozen=True)
class Simulation:
    dataset: str
    annotators: list[SimulatedAnnotator]
    submissions: int


def profiles_for(n: int) -> list[tuple[str, Profile]]:
    """``n`` (user name, profile) pairs: every profile once, then again with a number."""
    if not 1 <= n <= 60:
        raise ValidationError("simulate between 1 and 60 annotators")
    out = []
    for k in range(n):
        profile = PROFILES[k % len(PROFILES)]
        suffix = f"-{k // len(PROFILES) + 1}" if k >= len(PROFILES) else ""
        out.append((f"sim-{profile.name}{suffix}", profile))
    return out


def _truth(dataset_settings: DatasetSettings, dataset: str) -> dict[str, dict[str, Any]]:
    path = dataset_settings.truth_path
    if not path or not Path(path).is_file():
        raise ValidationError(
            f"dataset {dataset!r} has no planted truth to simulate against; simulate on a demo dataset"
        )
    rows = truth_rows(path)
    return {t["query_id"]: t for t in rows}


def _settings(db: Database, dataset: str) -> DatasetSettings:
    with db.read() as s:
        return DatasetSettings.from_stored(dataset_or_404(s, dataset).settings)


def _actor(db: Database, name: str) -> Actor:
    with db.read() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is not None:
            if user.role != Role.ANNOTATOR:
                raise ValidationError(f"user {name!r} exists and is not an annotator; rename it first")
            return Actor(user.id, user.name, user.role)
    info = add_user(db, name, Role.ANNOTATOR, generate_password())
    return Actor(info.id, info.name, info.role)


def _work(task: Any, truth: dict[str, Any], p: Profile, rng: random.Random, token: str) -> QueryWork:
    """What a profile gives for one query, decided against its planted truth."""
    bad = bool(truth.get("bad"))
    relevant = set() if bad else set(truth.get("true_positives", []))
    if rng.random() < (p.reject_bad if bad else p.reject_good):
        reason = "unanswerable" if bad else "ambiguous"
        return QueryWork(
            {}, "reject", reason=reason, client_token=token, time_on_task_ms=rng.randint(8_000, 40_000)
        )
    labels: dict[int, LabelInput] = {}
    for card in task.positives:
        if card.ext_id in relevant:
            label = "relevant" if rng.random() < p.confirm else "not_relevant"
        else:
            label = "not_relevant" if rng.random() < p.catch else "relevant"
        labels[card.item_id] = LabelInput(label, "original")
    for c in task.candidates:
        chance = p.find if c.card.ext_id in relevant else p.false_add
        if rng.random() < chance:
            labels[c.card.item_id] = LabelInput("relevant", "candidate", position=c.position)
    return QueryWork(labels, "accept", client_token=token, time_on_task_ms=rng.randint(15_000, 90_000))


def simulate_crowd(
    db: Database, dataset: str, n_annotators: int, *, overlap: int = 3, seed: int = 0
) -> Simulation:
    """Create ``n_annotators`` simulated annotators, assign them ``dataset`` and submit all their work.

    Raises:
        ValidationError: the dataset has no planted truth, ``n_annotators`` is out of 1..60, or a
            ``sim-*`` name belongs to a user who is not an annotator.
    """
    truth = _truth(_settings(db, dataset), dataset)
    chosen = profiles_for(n_annotators)
    actors = {name: _actor(db, name) for name, _ in chosen}
    assign(db, dataset, overlap=min(overlap, n_annotators), annotators=list(actors))
    done = []
    for number, (name, profile) in enumerate(chosen):
        actor, rng = actors[name], random.Random(f"{seed}:{number}:{name}")
        submitted = 0
        while (aid := next_assignment(db, actor, dataset)) is not None:
            task = load_task(db, actor, aid)
            work = _work(task, truth.get(task.query_ext_id, {}), profile, rng, f"sim-{seed}-{actor.id}-{aid}")
            submit(db, actor, aid, work)
            submitted += 1
        done.append(SimulatedAnnotator(name, profile, submitted))
    return Simulation(dataset, done, sum(a.submitted for a in done))


def true_skill(db: Database, dataset: str) -> dict[str, float]:
    """Each annotator's balanced accuracy against the planted truth over their item votes (as the
    models see them): the mean of the share of truly relevant items they called relevant and of
    truly irrelevant ones they called not relevant (0.5 is chance, e.g. saying yes to everything)."""
    _, data = load_data(db, dataset)
    truth = _truth(_settings(db, dataset), dataset)
    ext = {q.id: q.ext_id for q in data.queries}
    right: dict[int, dict[bool, list[bool]]] = {}
    for (qid, item_id), (uid, _), label in item_observations(data):
        if item_id is None:  # shown candidates nobody ticked: a bundle, not one item
            continue
        t = truth.get(ext[qid], {})
        relevant = not t.get("bad") and data.item_ext[item_id] in set(t.get("true_positives", []))
        right.setdefault(uid, {True: [], False: []})[relevant].append(label == int(relevant))
    return {
        data.user_names[u]: sum(sum(v) / len(v) for v in by.values() if v) / sum(1 for v in by.values() if v)
        for u, by in sorted(right.items())
    }


@dataclass(frozen=True)
class AggregationScore:
    """How often a way of combining votes recovers the planted truth."""

    method: str  # majority | dawid_skene | mace
    item_accuracy: float  # over every (query, item) someone voted on
    query_accuracy: float  # good query kept / bad query dropped
    items: int
    queries: int
    competence: dict[str, float]  # per annotator (empty for majority)


def score_aggregation(db: Database, dataset: str) -> list[AggregationScore]:
    """Majority vote, Dawid–Skene and MACE on the same votes, each scored against the planted truth
    (gold queries left out: their decision is their answer)."""
    _, data = load_data(db, dataset)
    truth = _truth(_settings(db, dataset), dataset)
    ext = {q.id: q.ext_id for q in data.queries}
    items = [o for o in item_observations(data) if o[0][0] not in data.gold and o[0][1] is not None]
    queries = [o for o in query_observations(data) if o[0] not in data.gold]

    def item_truth(unit: tuple[int, int]) -> bool:
        t = truth.get(ext[unit[0]], {})
        return not t.get("bad") and data.item_ext[unit[1]] in set(t.get("true_positives", []))

    def query_truth(qid: int) -> bool:
        return not truth.get(ext[qid], {}).get("bad")

    votes: dict[Any, list[int]] = {}
    for unit, _, label in items:
        votes.setdefault(unit, []).append(label)
    qvotes: dict[Any, list[int]] = {}
    for qid, _, label in queries:
        qvotes.setdefault(qid, []).append(label)

    def original(unit: tuple[int, int]) -> bool:
        return data.qrels.get(unit[0], {}).get(unit[1], 0) > 0

    def majority_item(unit: tuple[int, int]) -> bool:
        v = votes[unit]
        return 2 * sum(v) > len(v) or (2 * sum(v) == len(v) and original(unit))

    scores = [
        AggregationScore(
            "majority",
            sum(majority_item(u) == item_truth(u) for u in votes) / max(1, len(votes)),
            sum((2 * sum(v) > len(v)) == query_truth(q) for q, v in qvotes.items()) / max(1, len(qvotes)),
            len(votes),
            len(qvotes),
            {},
        )
    ]
    for model in (DAWID_SKENE, MACE):
        f = fit_crowd(data, model)
        scores.append(
            AggregationScore(
                model,
                sum(_decide(f.p_relevant(*u), original(u)) == item_truth(u) for u in votes)
                / max(1, len(votes)),
                sum(((f.p_approved(q) or 0) >= 0.5) == query_truth(q) for q in qvotes) / max(1, len(qvotes)),
                len(votes),
                len(qvotes),
                {c.annotator: c.items for c in f.competence(data) if c.items is not None},
            )
        )
    return scores


def _decide(p: float | None, fallback: bool) -> bool:
    return fallback if p is None or p == 0.5 else p > 0.5
