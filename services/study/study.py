"""Blind rating studies: query quality (MCMR's double-blind study) and system preference (MERIT's).

Two kinds of study share one machinery: an admin creates a study, which samples its items and
gives each item to ``raters_per_item`` raters; raters answer on the Rate page; the admin closes the
study, which locks it and unseals the results.

- ``query_quality``: an item is a target whose query group holds exactly one query of each of two
  sources (e.g. ``generated`` and ``human``). The rater sees the target (the items labelled
  positive for every query of the group, at most :data:`MAX_TARGETS`) and the two queries, labelled
  only "A" and "B"; scores each on the study's rubric (1-5 per criterion) and states a preference
  A, B or tie.
- ``system_preference``: an item is a query and, from two or more rankings (ranker runs of the
  dataset or TREC run files), each system's top-1 or top-3 results, merged so that an item several
  systems return is shown once, shuffled and labelled "Option 1..n". The rater picks the best.
  The pick is credited to the system that ranked the chosen item highest; systems that ranked it
  equally high (e.g. two systems with the same top-1) are each credited, and the results count
  such shared picks.

Blinding, enforced here rather than by the pages:

- What a rater receives (:class:`QualityTask`, :class:`PreferenceTask`) holds display texts,
  images and labels only: no query id, source, system name, or other raters' answers. The
  unblinded content lives in ``StudyItem.payload`` and ``StudyAssignment.mapping`` and is read
  only by admin services after closing. A rater names an assignment by its id, which is checked
  against the rater; assignments are inserted in a shuffled order, so an id says nothing about
  the order its queries are shown in. The study name and the rubric are shown to raters, so they
  may not name a compared source or system.
- While a study is open an admin gets progress counts only (:func:`study_progress`);
  :func:`quality_results`, :func:`preference_results` and :func:`responses_frame` raise
  :class:`ResultsSealed`. Closing locks the study: :func:`submit_answer` raises
  :class:`StudyClosed`.

Counterbalancing (query quality): which source is shown as "A" is an equitable 2-colouring of the
bipartite item-rater graph (Euler circuits of the graph with odd-degree vertices tied to two
dummy vertices, coloured alternately; de Werra's construction). Each item and each rater sees
each source first equally often, or one more time for one source when their count is odd, and
over the whole study each source is first exactly equally often when the number of assignments
is even. When it is odd (an odd number of items, each with an odd number of raters) one source is
first exactly once more than the other: no design can do better. Everything random (the sample,
the raters, the sides, the queue order, the option order) is drawn from the study's seed, so the
same arguments give the same study.

Statistics come from maintained libraries: bootstrap intervals and the Wilcoxon signed-rank and
binomial tests from scipy, Wilson intervals from statsmodels, Krippendorff's alpha from the
``krippendorff`` package (through :mod:`services.agreement_stats`). Ratings of one item are not
independent, so the mean's interval resamples items (a cluster bootstrap) and the paired test
runs over per-item mean differences; preference counts and their binomial test treat each answer
as one trial, as the published studies do.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
from scipy import stats as sps
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from statsmodels.stats.proportion import proportion_confint

from db.enums import Role
from db.models import (
    Candidate,
    Dataset,
    Item,
    Qrel,
    Query,
    RankerRun,
    Study,
    StudyAssignment,
    StudyItem,
    StudyResponse,
    User,
    utcnow,
)
from db.session import Database
from models.hashing import sha256_file
from services.agreement import stats as agreement_stats
from services.agreement.stats import Coefficient
from services.core.auth import EVERYONE, Actor, allow, require_role
from services.core.cards import Card, RefView, card_of
from services.core.config import load_settings
from services.core.errors import NotFoundError, PermissionDenied, ValidationError
from services.core.lookups import dataset_or_404
from services.core.media import MediaStore
from services.formats.trec import read_trec_run

log = logging.getLogger(__name__)

KIND_QUALITY = "query_quality"
KIND_PREFERENCE = "system_preference"
KINDS = (KIND_QUALITY, KIND_PREFERENCE)
OPEN, CLOSED = "open", "closed"
A, B, TIE = "A", "B", "tie"
SCALE = (1, 2, 3, 4, 5)
MAX_CRITERIA = 3
MAX_TARGETS = 3
TOP_N = (1, 3)
MAX_SAMPLE = 10_000
MAX_COMMENT_CHARS = 2_000
CONFIDENCE = 0.95
N_RESAMPLES = 9_999
NAME_RE = re.compile(r"^[\w .:-]{1,128}$")
CRITERION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,39}$")


class StudyClosed(ValidationError):
    """The study is closed: its answers are locked."""


class ResultsSealed(PermissionDenied):
    """The study is open: its scores stay sealed until it is closed."""


# --------------------------------------------------------------------------- rubric


@dataclass(frozen=True)
class Criterion:
    """One thing raters score 1-5, with a short anchor text for each point of the scale."""

    name: str
    question: str
    anchors: tuple[str, ...]


DEFAULT_RUBRIC: tuple[Criterion, ...] = (
    Criterion(
        "overall",
        "How good is this query for finding the target?",
        (
            "Unusable: does not describe the target, or cannot be understood.",
            "Poor: describes the target only vaguely, or gets a detail wrong.",
            "Fair: fits the target, but is unclear or misses an important detail.",
            "Good: clear and fits the target, with small flaws.",
            "Excellent: clear, specific and fluent; it asks for exactly the target.",
        ),
    ),
)


def check_rubric(criteria: Sequence[Criterion], *, forbidden: Sequence[str] = ()) -> tuple[Criterion, ...]:
    """Validate a rubric: 1-3 criteria, each with a name, a question and five anchors.

    Args:
        criteria: the criteria, in the order raters see them.
        forbidden: words raters must not see (the compared sources): no text may contain one.

    Raises:
        ValidationError: what is wrong, and with which criterion.
    """
    criteria = tuple(criteria)
    if not 1 <= len(criteria) <= MAX_CRITERIA:
        raise ValidationError(f"a rubric has 1 to {MAX_CRITERIA} criteria, not {len(criteria)}")
    names = [c.name for c in criteria]
    if len(set(names)) != len(names):
        raise ValidationError("two criteria have the same name")
    checked = []
    for c in criteria:
        name = (c.name or "").strip()
        if not CRITERION_RE.match(name):
            raise ValidationError(
                f"criterion name {c.name!r}: 1-40 letters, digits, spaces, '_' or '-', starting with a letter or digit"
            )
        question = (c.question or "").strip() or f"Score the query on {name}."
        anchors = tuple((a or "").strip() for a in c.anchors)
        if len(anchors) != len(SCALE) or not all(anchors):
            raise ValidationError(f"criterion {name!r} needs one anchor text for each score 1-5")
        if len(question) > 300 or any(len(a) > 200 for a in anchors):
            raise ValidationError(f"criterion {name!r}: question up to 300 characters, anchors up to 200")
        _check_blind(" ".join((name, question, *anchors)), forbidden, f"criterion {name!r}")
        checked.append(Criterion(name, question, anchors))
    return tuple(checked)


def rubric_from_json(data: Any) -> tuple[Criterion, ...]:
    """A rubric from JSON: ``[{"name": ..., "question": ..., "anchors": [five texts]}, ...]``."""
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ValidationError('a rubric is a JSON list of {"name", "question", "anchors": [5 texts]}')
    try:
        return tuple(
            Criterion(str(c["name"]), str(c.get("question", "")), tuple(str(a) for a in c["anchors"]))
            for c in data
        )
    except (KeyError, TypeError) as e:
        raise ValidationError(f"a rubric criterion lacks {e}; each needs a name and five anchors") from e


def _rubric_config(criteria: Sequence[Criterion]) -> list[dict[str, Any]]:
    return [{"name": c.name, "question": c.question, "anchors": list(c.anchors)} for c in criteria]


def _rubric_of(config: Mapping[str, Any]) -> tuple[Criterion, ...]:
    return tuple(Criterion(c["name"], c["question"], tuple(c["anchors"])) for c in config.get("rubric", []))


def _check_blind(text: str, forbidden: Sequence[str], what: str) -> None:
    lowered = text.lower()
    for word in forbidden:
        if word and word.lower() in lowered:
            raise ValidationError(f"{what} is shown to raters and may not name {word!r}")


# --------------------------------------------------------------------------- design


def counterbalance(pairs: Sequence[tuple[Any, Any]], seed: int) -> list[bool]:
    """Which side each (item, rater) pair gets: True shows the first source as "A".

    An equitable 2-colouring of the bipartite item-rater (multi)graph: every item and every rater
    gets each colour equally often, give or take one, and over all pairs the colours are exactly
    equal when ``len(pairs)`` is even (one apart when it is odd).

    Construction (de Werra): join every odd-degree rater to a dummy item vertex and every
    odd-degree item to a dummy rater vertex, and the two dummies to each other when both are odd.
    Every degree is now even and the graph still bipartite, so each component has an Euler
    circuit of even length; colouring its edges alternately balances every vertex exactly, and
    dropping the dummy edges unbalances a vertex by at most one. The dummy rater's edges are
    balanced, so the items' surpluses cancel out unless the dummy-dummy edge exists, which
    happens exactly when the number of pairs is odd.

    Args:
        pairs: (item, rater) pairs; any hashable ids.
        seed: the study seed; the same pairs and seed give the same sides.
    """
    rng = random.Random(f"{seed}:sides")
    edges: list[tuple[tuple[str, Any], tuple[str, Any]]] = [(("i", i), ("r", r)) for i, r in pairs]
    degree: Counter[tuple[str, Any]] = Counter()
    for u, v in edges:
        degree[u] += 1
        degree[v] += 1
    dummy_item, dummy_rater = ("i*", None), ("r*", None)
    odd_items = [v for v in degree if v[0] == "i" and degree[v] % 2]
    odd_raters = [v for v in degree if v[0] == "r" and degree[v] % 2]
    edges += [(dummy_item, r) for r in odd_raters] + [(i, dummy_rater) for i in odd_items]
    if len(odd_raters) % 2:  # then len(odd_items) is odd too
        edges.append((dummy_item, dummy_rater))

    adjacency: dict[tuple[str, Any], list[tuple[int, tuple[str, Any]]]] = defaultdict(list)
    for n, (u, v) in enumerate(edges):
        adjacency[u].append((n, v))
        adjacency[v].append((n, u))
    vertices = list(adjacency)
    for v in vertices:
        rng.shuffle(adjacency[v])
    rng.shuffle(vertices)
    used = [False] * len(edges)
    cursor = dict.fromkeys(vertices, 0)
    colour = [False] * len(edges)
    for start in vertices:
        # Hierholzer: the edges popped off the stack form one closed walk over the component.
        stack: list[tuple[tuple[str, Any], int | None]] = [(start, None)]
        circuit: list[int] = []
        while stack:
            vertex, via = stack[-1]
            links = adjacency[vertex]
            while cursor[vertex] < len(links) and used[links[cursor[vertex]][0]]:
                cursor[vertex] += 1
            if cursor[vertex] < len(links):
                edge, other = links[cursor[vertex]]
                used[edge] = True
                stack.append((other, edge))
            else:
                stack.pop()
                if via is not None:
                    circuit.append(via)
        first = rng.random() < 0.5
        for n, edge in enumerate(circuit):
            colour[edge] = (n % 2 == 0) == first
    return colour[: len(pairs)]


def assign_raters(
    n_items: int, raters: Sequence[int], per_item: int, excluded: Sequence[set[int]], seed: int
) -> list[list[int]]:
    """Pick ``per_item`` raters for each item: the least loaded eligible ones, ties at random.

    Args:
        n_items: items, in the order they are served.
        raters: user ids of the raters.
        per_item: raters per item.
        excluded: per item, raters who may not have it (they wrote one of its queries).
        seed: the study seed.

    Raises:
        ValidationError: an item has fewer eligible raters than ``per_item``.
    """
    rng = random.Random(f"{seed}:raters")
    load = dict.fromkeys(raters, 0)
    chosen: list[list[int]] = []
    for n in range(n_items):
        eligible = [r for r in raters if r not in excluded[n]]
        if len(eligible) < per_item:
            raise ValidationError(
                f"an item has only {len(eligible)} eligible rater(s) (raters never get a query they wrote); "
                f"choose more raters or fewer per item than {per_item}"
            )
        ranked = sorted(eligible, key=lambda r: (load[r], rng.random()))
        picked = ranked[:per_item]
        for r in picked:
            load[r] += 1
        chosen.append(picked)
    return chosen


# --------------------------------------------------------------------------- views


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
    raters_per_item: int
    n_items: int
    n_assignments: int
    n_answered: int
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class CreateReport:
    study: StudyInfo
    sample: int  # asked for
    n_eligible: int  # groups (query quality) or queries (system preference) that could be sampled
    skipped: dict[str, int]  # why others could not, with how many
    load: dict[str, int]  # rater -> items
    first_shown: dict[str, int]  # query quality: source -> assignments showing it as "A"


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
    n_items: int
    n_assignments: int
    n_answered: int
    raters: list[RaterProgress]


@dataclass(frozen=True)
class RaterStudy:
    """A study in a rater's list."""

    name: str
    kind: str
    status: str
    answered: int
    total: int


@dataclass(frozen=True)
class QueueEntry:
    assignment_id: int
    number: int  # 1-based place in the rater's queue
    answered: bool


@dataclass(frozen=True)
class ShownQuery:
    """A query as a rater sees it: a label, its text and its reference images."""

    label: str
    text: str
    refs: list[RefView]


@dataclass(frozen=True)
class QualityTask:
    """One query-quality item on a rater's screen: nothing that says where a query came from."""

    assignment_id: int
    study: str
    number: int
    total: int
    answered: int
    is_open: bool
    targets: list[Card]
    queries: list[ShownQuery]  # "A", then "B"
    rubric: tuple[Criterion, ...]
    my_scores: dict[str, dict[str, int]]
    my_preference: str | None
    my_comment: str


@dataclass(frozen=True)
class ShownResult:
    label: str  # "Option 1", ...
    card: Card


@dataclass(frozen=True)
class PreferenceTask:
    """One system-preference item: a query and anonymous, shuffled results."""

    assignment_id: int
    study: str
    number: int
    total: int
    answered: int
    is_open: bool
    query_text: str
    query_refs: list[RefView]
    options: list[ShownResult]
    my_preference: str | None
    my_comment: str


@dataclass(frozen=True)
class Answer:
    """What a rater submits: scores per criterion and label (query quality), and a preference."""

    scores: dict[str, dict[str, int]] = field(default_factory=dict)
    preference: str | None = None  # "A" | "B" | "tie", or an option label
    comment: str = ""


# --------------------------------------------------------------------------- helpers


def _store() -> MediaStore:
    return MediaStore(load_settings().data_dir)


def _study(s: Session, name: str, *, lock: bool = False) -> Study:
    stmt = select(Study).where(Study.name == name)
    if lock:
        stmt = stmt.with_for_update()
    study = s.scalar(stmt)
    if study is None:
        raise NotFoundError(f"no study named {name!r}")
    return study


def _rater(actor: Actor) -> Actor:
    require_role(actor, *tuple(Role))
    if actor.id is None:
        raise PermissionDenied("rating needs a user account; log in to the app")
    return actor


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite drops the time zone; every stored time is UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _info(s: Session, study: Study) -> StudyInfo:
    config = study.config or {}
    n_items = s.scalar(select(func.count()).select_from(StudyItem).where(StudyItem.study_id == study.id))
    n_assignments, n_answered = s.execute(
        select(func.count(StudyAssignment.id), func.count(StudyResponse.id))
        .select_from(StudyAssignment)
        .join(StudyItem, StudyItem.id == StudyAssignment.study_item_id)
        .outerjoin(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
        .where(StudyItem.study_id == study.id)
    ).one()
    return StudyInfo(
        name=study.name,
        kind=study.kind,
        dataset=s.get(Dataset, study.dataset_id).name,
        status=study.status,
        seed=study.seed,
        compared=tuple(config.get("sources") or config.get("systems") or ()),
        rubric=_rubric_of(config),
        top_n=config.get("top_n"),
        raters=tuple(config.get("raters", ())),
        raters_per_item=int(config.get("raters_per_item", 0)),
        n_items=n_items or 0,
        n_assignments=n_assignments or 0,
        n_answered=n_answered or 0,
        created_at=_aware(study.created_at),
        closed_at=_aware(study.closed_at),
    )


def _check_common(name: str, sample: int, raters_per_item: int, compared: Sequence[str]) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError("a study name is 1-128 letters, digits, spaces, '.', ':', '_' or '-'")
    _check_blind(name, compared, "the study name")
    if not 1 <= sample <= MAX_SAMPLE:
        raise ValidationError(f"the sample is 1 to {MAX_SAMPLE:,} items")
    if raters_per_item < 1:
        raise ValidationError("each item needs at least one rater")
    return name


def _raters(s: Session, names: Sequence[str] | None, per_item: int) -> list[User]:
    active = {u.name: u for u in s.scalars(select(User).where(User.is_active.is_(True)).order_by(User.name))}
    if names:
        unknown = sorted(set(names) - set(active))
        if unknown:
            raise ValidationError(f"not active users: {', '.join(unknown)}")
        chosen = [active[n] for n in sorted(set(names))]
    else:
        chosen = list(active.values())
    if len(chosen) < per_item:
        raise ValidationError(
            f"{per_item} raters per item needs at least {per_item} raters; {len(chosen)} chosen"
        )
    return chosen


@dataclass
class _Planned:
    group_key: str | None
    query_id: int | None
    payload: dict[str, Any]
    authors: set[int]


def _write_study(
    s: Session,
    actor: Actor,
    *,
    ds: Dataset,
    name: str,
    kind: str,
    seed: int,
    config: dict[str, Any],
    planned: list[_Planned],
    raters: list[User],
    per_item: int,
) -> tuple[Study, dict[str, int], dict[str, int]]:
    if s.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise ValidationError(f"a study named {name!r} exists already; choose another name")
    rater_ids = [u.id for u in raters]
    names = {u.id: u.name for u in raters}
    chosen = assign_raters(len(planned), rater_ids, per_item, [p.authors for p in planned], seed)
    study = Study(
        name=name,
        dataset_id=ds.id,
        kind=kind,
        status=OPEN,
        seed=seed,
        config={**config, "raters": [u.name for u in raters], "raters_per_item": per_item},
        created_by_id=actor.id,
    )
    s.add(study)
    s.flush()
    items = []
    for position, p in enumerate(planned):
        item = StudyItem(
            study_id=study.id,
            position=position,
            group_key=p.group_key,
            query_id=p.query_id,
            payload=p.payload,
        )
        s.add(item)
        items.append(item)
    s.flush()

    pairs = [(n, r) for n, picked in enumerate(chosen) for r in picked]
    mappings: list[dict[str, Any]] = []
    first_shown: Counter[str] = Counter()
    if kind == KIND_QUALITY:
        first, second = config["sources"]
        for a_first in counterbalance(pairs, seed):
            mapping = {A: first, B: second} if a_first else {A: second, B: first}
            first_shown[mapping[A]] += 1
            mappings.append(mapping)
    else:
        rng = random.Random(f"{seed}:options")
        for n, picked in enumerate(chosen):
            base = list(planned[n].payload["options"])
            rng.shuffle(base)
            # A Latin rotation: the item's raters see its options in different positions.
            for j in range(len(picked)):
                turn = j % len(base)
                shown = base[turn:] + base[:turn]
                mappings.append({f"Option {k}": option for k, option in enumerate(shown, start=1)})

    queue_rng = random.Random(f"{seed}:queue")
    per_rater: dict[int, list[int]] = defaultdict(list)
    for n, (_, r) in enumerate(pairs):
        per_rater[r].append(n)
    position = {}
    for r in rater_ids:
        order = per_rater.get(r, [])
        queue_rng.shuffle(order)
        position.update({n: k for k, n in enumerate(order)})
    # Inserted in a shuffled order, so an assignment id (a rater sees their own) tells nothing.
    insert_order = list(range(len(pairs)))
    random.Random(f"{seed}:ids").shuffle(insert_order)
    for n in insert_order:
        item_n, r = pairs[n]
        s.add(
            StudyAssignment(
                study_item_id=items[item_n].id, rater_id=r, position=position[n], mapping=mappings[n]
            )
        )
    s.flush()
    load = {names[r]: len(per_rater.get(r, [])) for r in rater_ids}
    return study, load, dict(first_shown)


# --------------------------------------------------------------------------- creating studies


@allow(Role.ADMIN)
def create_quality_study(
    db: Database,
    actor: Actor,
    *,
    dataset: str,
    name: str,
    sources: Sequence[str] = ("generated", "human"),
    sample: int = 100,
    raters_per_item: int = 3,
    raters: Sequence[str] | None = None,
    seed: int = 0,
    rubric: Sequence[Criterion] | None = None,
) -> CreateReport:
    """Create a query-quality study: targets whose group holds one query of each source.

    Args:
        dataset: the dataset whose query groups are sampled.
        name: the study's name (raters see it, so it may not name a source).
        sources: the two sources compared, e.g. ``("generated", "human")``.
        sample: how many targets to sample (all eligible ones when fewer).
        raters_per_item: raters per target.
        raters: user names of the raters; default every active user.
        seed: drives the sample, the raters, the A/B sides and the queue order.
        rubric: up to three criteria; default :data:`DEFAULT_RUBRIC`.

    Raises:
        ValidationError: bad arguments, no eligible group, or an item with too few raters.
        NotFoundError: no such dataset.
    """
    sources = [str(x).strip() for x in sources if str(x).strip()]
    if len(sources) != 2 or sources[0] == sources[1]:
        raise ValidationError("a query-quality study compares exactly two different sources")
    name = _check_common(name, sample, raters_per_item, sources)
    criteria = check_rubric(rubric or DEFAULT_RUBRIC, forbidden=sources)
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        groups: dict[str, dict[str, list[Query]]] = defaultdict(lambda: defaultdict(list))
        for q in s.scalars(
            select(Query)
            .where(Query.dataset_id == ds.id, Query.group_key.is_not(None), Query.source.in_(sources))
            .order_by(Query.id)
        ):
            groups[q.group_key][q.source].append(q)
        positives: dict[int, set[int]] = defaultdict(set)
        for qid, iid in s.execute(
            select(Qrel.query_id, Qrel.item_id).join(Query).where(Query.dataset_id == ds.id, Qrel.score > 0)
        ):
            positives[qid].add(iid)
        eligible: list[tuple[str, dict[str, Query], list[int]]] = []
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
        if not eligible:
            raise ValidationError(
                f"no query group of {dataset!r} holds one query of each of {', '.join(sources)} "
                "with a labelled target"
            )
        picked = random.Random(f"{seed}:sample").sample(eligible, min(sample, len(eligible)))
        picked.sort(key=lambda e: e[0])
        planned = [
            _Planned(
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
        config = {"sources": sources, "rubric": _rubric_config(criteria), "sample": sample}
        study, load, first_shown = _write_study(
            s,
            actor,
            ds=ds,
            name=name,
            kind=KIND_QUALITY,
            seed=seed,
            config=config,
            planned=planned,
            raters=_raters(s, raters, raters_per_item),
            per_item=raters_per_item,
        )
        info = _info(s, study)
    log.info("study %s created: %d targets, %d assignments", name, info.n_items, info.n_assignments)
    return CreateReport(info, sample, len(eligible), dict(skipped), load, first_shown)


def _ranker_results(
    s: Session, dataset_id: int, names: Sequence[str], top_n: int
) -> dict[str, dict[int, list[int]]]:
    runs = dict(
        s.execute(
            select(RankerRun.name, RankerRun.id).where(
                RankerRun.dataset_id == dataset_id, RankerRun.name.in_(names)
            )
        ).all()
    )
    missing = [n for n in names if n not in runs]
    if missing:
        available = s.scalars(
            select(RankerRun.name).where(RankerRun.dataset_id == dataset_id).order_by(RankerRun.name)
        ).all()
        raise ValidationError(
            f"no ranking named {', '.join(missing)} in this dataset; "
            f"available: {', '.join(available) or 'none (run the Ranking job first)'}"
        )
    results: dict[str, dict[int, list[int]]] = {}
    for run_name in names:
        per_query: dict[int, list[int]] = defaultdict(list)
        for qid, iid in s.execute(
            select(Candidate.query_id, Candidate.item_id)
            .where(Candidate.run_id == runs[run_name])
            .order_by(Candidate.query_id, Candidate.rank)
        ):
            if len(per_query[qid]) < top_n:
                per_query[qid].append(iid)
        results[run_name] = dict(per_query)
    return results


def _file_results(
    s: Session, dataset_id: int, run_files: Mapping[str, Path], top_n: int
) -> tuple[dict[str, dict[int, list[int]]], Counter[str]]:
    queries = dict(s.execute(select(Query.ext_id, Query.id).where(Query.dataset_id == dataset_id)).all())
    items = dict(s.execute(select(Item.ext_id, Item.id).where(Item.dataset_id == dataset_id)).all())
    results: dict[str, dict[int, list[int]]] = {}
    skipped: Counter[str] = Counter()
    for run_name, path in run_files.items():
        run = read_trec_run(Path(path))
        per_query: dict[int, list[int]] = {}
        for qid, ranked in run.items():
            if qid not in queries:
                skipped[f"{run_name}: query not in the dataset"] += 1
                continue
            known = [items[doc] for doc, _ in ranked if doc in items]
            if len(known) < len(ranked):
                skipped[f"{run_name}: document not in the pool"] += len(ranked) - len(known)
            per_query[queries[qid]] = known[:top_n]
        if not per_query:
            raise ValidationError(f"run file {Path(path).name} ranks no query of this dataset")
        results[run_name] = per_query
    return results, skipped


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
    sample: int = 100,
    raters_per_item: int = 3,
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
    name = _check_common(name, sample, raters_per_item, names)
    with db.write() as s:
        ds = dataset_or_404(s, dataset)
        results = _ranker_results(s, ds.id, [n for n in names if n not in run_files], top_n)
        from_files, skipped = _file_results(s, ds.id, run_files, top_n)
        results.update(from_files)
        queries = {
            q.id: q for q in s.scalars(select(Query).where(Query.dataset_id == ds.id).order_by(Query.id))
        }
        eligible: list[tuple[Query, list[dict[str, Any]]]] = []
        for qid, q in queries.items():
            lists = {n: results[n].get(qid, []) for n in names}
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
            options = [{"item_id": iid, "ranks": ranks[iid]} for iid in sorted(ranks)]
            eligible.append((q, options))
        if not eligible:
            raise ValidationError("no query has results from every system that differ between systems")
        picked = random.Random(f"{seed}:sample").sample(eligible, min(sample, len(eligible)))
        picked.sort(key=lambda e: e[0].id)
        planned = [
            _Planned(
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
        study, load, _ = _write_study(
            s,
            actor,
            ds=ds,
            name=name,
            kind=KIND_PREFERENCE,
            seed=seed,
            config=config,
            planned=planned,
            raters=_raters(s, raters, raters_per_item),
            per_item=raters_per_item,
        )
        info = _info(s, study)
    log.info("study %s created: %d queries, %d assignments", name, info.n_items, info.n_assignments)
    return CreateReport(info, sample, len(eligible), dict(skipped), load, {})


# --------------------------------------------------------------------------- admin: settings and progress


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
        return list(
            s.scalars(select(RankerRun.name).where(RankerRun.dataset_id == ds.id).order_by(RankerRun.name))
        )


@allow(Role.ADMIN)
def list_studies(db: Database, actor: Actor) -> list[StudyInfo]:
    with db.read() as s:
        return [_info(s, st) for st in s.scalars(select(Study).order_by(Study.created_at.desc(), Study.id))]


@allow(Role.ADMIN)
def study_info(db: Database, actor: Actor, name: str) -> StudyInfo:
    with db.read() as s:
        return _info(s, _study(s, name))


@allow(Role.ADMIN)
def study_progress(db: Database, actor: Actor, name: str) -> StudyProgress:
    """How many answers each rater has given: counts only, open or closed."""
    with db.read() as s:
        study = _study(s, name)
        rows = s.execute(
            select(User.name, func.count(StudyAssignment.id), func.count(StudyResponse.id))
            .select_from(StudyAssignment)
            .join(StudyItem, StudyItem.id == StudyAssignment.study_item_id)
            .join(User, User.id == StudyAssignment.rater_id)
            .outerjoin(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
            .where(StudyItem.study_id == study.id)
            .group_by(User.name)
            .order_by(User.name)
        ).all()
        info = _info(s, study)
        return StudyProgress(
            study=study.name,
            status=study.status,
            n_items=info.n_items,
            n_assignments=info.n_assignments,
            n_answered=info.n_answered,
            raters=[RaterProgress(rater, answered, total) for rater, total, answered in rows],
        )


@allow(Role.ADMIN)
def close_study(db: Database, actor: Actor, name: str) -> StudyInfo:
    """Close a study: no more answers, and its results are unsealed. Closing twice is harmless."""
    with db.write() as s:
        study = _study(s, name, lock=True)
        if study.status != CLOSED:
            study.status = CLOSED
            study.closed_at = utcnow()
            log.info("study %s closed by %s", name, actor.name)
        s.flush()
        return _info(s, study)


# --------------------------------------------------------------------------- raters


@allow(*EVERYONE)
def my_studies(db: Database, actor: Actor) -> list[RaterStudy]:
    """Studies in which the user has items to rate, open ones first."""
    _rater(actor)
    with db.read() as s:
        rows = s.execute(
            select(
                Study.name,
                Study.kind,
                Study.status,
                func.count(StudyAssignment.id),
                func.count(StudyResponse.id),
            )
            .select_from(StudyAssignment)
            .join(StudyItem, StudyItem.id == StudyAssignment.study_item_id)
            .join(Study, Study.id == StudyItem.study_id)
            .outerjoin(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
            .where(StudyAssignment.rater_id == actor.id)
            .group_by(Study.id, Study.name, Study.kind, Study.status)
        ).all()
    studies = [RaterStudy(n, k, st, answered, total) for n, k, st, total, answered in rows]
    return sorted(studies, key=lambda x: (x.status != OPEN, x.name))


@allow(*EVERYONE)
def my_queue(db: Database, actor: Actor, study: str) -> list[QueueEntry]:
    """The user's assignments in a study, in their queue order."""
    _rater(actor)
    with db.read() as s:
        return _queue(s, actor, _study(s, study).id)


def _queue(s: Session, actor: Actor, study_id: int) -> list[QueueEntry]:
    rows = s.execute(
        select(StudyAssignment.id, StudyResponse.id)
        .join(StudyItem, StudyItem.id == StudyAssignment.study_item_id)
        .outerjoin(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
        .where(StudyItem.study_id == study_id, StudyAssignment.rater_id == actor.id)
        .order_by(StudyAssignment.position, StudyAssignment.id)
    ).all()
    return [QueueEntry(aid, n, rid is not None) for n, (aid, rid) in enumerate(rows, start=1)]


@allow(*EVERYONE)
def next_assignment(db: Database, actor: Actor, study: str) -> int | None:
    """The first unanswered assignment in the user's queue, or None when all are answered."""
    return next((e.assignment_id for e in my_queue(db, actor, study) if not e.answered), None)


def _own(s: Session, actor: Actor, assignment_id: int) -> tuple[StudyAssignment, StudyItem, Study]:
    a = s.get(StudyAssignment, assignment_id)
    if a is None or a.rater_id != actor.id:
        # One message for both: a rater learns nothing about other raters' assignments.
        raise PermissionDenied("this item is not in your study queue")
    item = s.get(StudyItem, a.study_item_id)
    return a, item, s.get(Study, item.study_id)


def _refs(s: Session, query_id: int, store: MediaStore) -> list[RefView]:
    query = s.get(Query, query_id)
    if query is None:
        return []
    refs = []
    for ref in query.refs:
        if ref.item_id is not None:
            refs.append(RefView(card_of(s.get(Item, ref.item_id), store), None))
        else:
            refs.append(RefView(None, str(store.thumb_path(ref.image_sha256)) if ref.image_sha256 else None))
    return refs


@allow(*EVERYONE)
def load_task(db: Database, actor: Actor, assignment_id: int) -> QualityTask | PreferenceTask:
    """One item of the user's queue, blinded: display texts, images and labels only."""
    _rater(actor)
    store = _store()
    with db.read() as s:
        a, item, study = _own(s, actor, assignment_id)
        response = s.scalar(select(StudyResponse).where(StudyResponse.assignment_id == a.id))
        queue = _queue(s, actor, study.id)
        number = next(e.number for e in queue if e.assignment_id == a.id)
        answered = sum(e.answered for e in queue)
        common = {
            "assignment_id": a.id,
            "study": study.name,
            "number": number,
            "total": len(queue),
            "answered": answered,
            "is_open": study.status == OPEN,
            "my_preference": response.preference if response else None,
            "my_comment": response.comment if response else "",
        }
        payload = item.payload
        if study.kind == KIND_QUALITY:
            targets = [card_of(s.get(Item, iid), store) for iid in payload["targets"]]
            shown = []
            for label in (A, B):
                query = payload["queries"][a.mapping[label]]
                shown.append(ShownQuery(label, query["text"], _refs(s, query["id"], store)))
            return QualityTask(
                **common,
                targets=targets,
                queries=shown,
                rubric=_rubric_of(study.config),
                my_scores={k: dict(v) for k, v in (response.scores if response else {}).items()},
            )
        options = [
            ShownResult(label, card_of(s.get(Item, option["item_id"]), store))
            for label, option in sorted(a.mapping.items(), key=lambda kv: int(kv[0].split()[-1]))
        ]
        query = payload["query"]
        return PreferenceTask(
            **common, query_text=query["text"], query_refs=_refs(s, query["id"], store), options=options
        )


def _check_answer(study: Study, mapping: Mapping[str, Any], answer: Answer) -> dict[str, dict[str, int]]:
    if len(answer.comment or "") > MAX_COMMENT_CHARS:
        raise ValidationError(f"the comment is limited to {MAX_COMMENT_CHARS:,} characters")
    if study.kind == KIND_PREFERENCE:
        if answer.preference not in mapping:
            raise ValidationError("choose the best result")
        return {}
    scores: dict[str, dict[str, int]] = {}
    for criterion in _rubric_of(study.config):
        given = (answer.scores or {}).get(criterion.name) or {}
        row = {}
        for label in (A, B):
            value = given.get(label)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value not in SCALE:
                raise ValidationError(f"score query {label} on {criterion.name!r} from 1 to 5")
            row[label] = int(value)
        scores[criterion.name] = row
    if answer.preference not in (A, B, TIE):
        raise ValidationError("say which query is better: A, B or tie")
    return scores


@allow(*EVERYONE)
def submit_answer(db: Database, actor: Actor, assignment_id: int, answer: Answer) -> int | None:
    """Store the user's answer for one item (a second submit replaces it while the study is open).

    Returns:
        The next unanswered assignment of the user in this study, or None.

    Raises:
        StudyClosed: the study is closed.
        ValidationError: a score or the preference is missing or out of range.
        NotFoundError: the assignment is not the user's.
    """
    _rater(actor)
    for attempt in range(2):
        try:
            return _submit(db, actor, assignment_id, answer)
        except IntegrityError:
            # A concurrent first submit of the same assignment won; this one now updates it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _submit(db: Database, actor: Actor, assignment_id: int, answer: Answer) -> int | None:
    with db.write() as s:
        a, item, _ = _own(s, actor, assignment_id)
        # Shared lock, re-read: a concurrent close waits for this answer, or this answer sees it.
        study = s.scalar(
            select(Study)
            .where(Study.id == item.study_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
        if study.status != OPEN:
            raise StudyClosed(
                f"the study {study.name!r} is closed; answers can no longer be given or changed"
            )
        scores = _check_answer(study, a.mapping, answer)
        response = s.scalar(select(StudyResponse).where(StudyResponse.assignment_id == a.id))
        values = {
            "scores": scores,
            "preference": answer.preference,
            "mapping": dict(a.mapping),
            "comment": (answer.comment or "").strip(),
        }
        if response is None:
            s.add(StudyResponse(assignment_id=a.id, **values))
        else:
            for key, value in values.items():
                setattr(response, key, value)
        s.flush()
        return next((e.assignment_id for e in _queue(s, actor, study.id) if not e.answered), None)


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Share:
    """A count out of ``n`` with its rate and Wilson interval."""

    label: str
    count: int
    n: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class StatTest:
    """A test's statistic and two-sided p-value; ``reason`` says why they are missing."""

    name: str
    statistic: float | None
    p_value: float | None
    n: int
    reason: str | None = None


def mean_ci(
    sums: Sequence[float],
    counts: Sequence[float],
    *,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """Bootstrap (BCa, scipy) interval of a mean over units that each hold several values.

    Units (items) are resampled whole, so ratings of one item stay together; the statistic is
    the mean of all values, ``sum(sums) / sum(counts)``. None with fewer than two units.
    """
    sums_a, counts_a = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
    if len(sums_a) < 2:
        return None
    if np.ptp(sums_a / counts_a) == 0:  # no variation: the bootstrap has nothing to resample
        value = float(sums_a.sum() / counts_a.sum())
        return value, value

    def ratio(x: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sum(x, axis=axis) / np.sum(c, axis=axis)

    result = sps.bootstrap(
        (sums_a, counts_a),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa undefined (e.g. two units): percentile
        low, high = np.percentile(
            result.bootstrap_distribution, [50 * (1 - confidence), 50 * (1 + confidence)]
        )
    return float(low), float(high)


def wilson(count: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of ``count / n`` (statsmodels); None when ``n`` is 0."""
    if n <= 0:
        return None
    low, high = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def share(label: str, count: int, n: int) -> Share:
    interval = wilson(count, n)
    return Share(
        label,
        count,
        n,
        count / n if n else None,
        interval[0] if interval else None,
        interval[1] if interval else None,
    )


def binomial_test(k: int, n: int, p: float = 0.5) -> StatTest:
    """Exact two-sided binomial test of ``k`` successes in ``n`` against ``p`` (scipy)."""
    if n <= 0:
        return StatTest("binomial test", None, None, 0, "no decisive answer")
    result = sps.binomtest(k, n, p)
    return StatTest("binomial test", k / n, float(result.pvalue), n)


def wilcoxon_test(differences: Sequence[float]) -> StatTest:
    """Wilcoxon signed-rank test of paired differences against 0 (scipy; zero differences dropped)."""
    diffs = np.asarray(differences, dtype=float)
    nonzero = int(np.count_nonzero(diffs))
    if nonzero == 0:
        return StatTest("Wilcoxon signed-rank", None, None, len(diffs), "every paired difference is 0")
    result = sps.wilcoxon(diffs)
    return StatTest("Wilcoxon signed-rank", float(result.statistic), float(result.pvalue), len(diffs))


# --------------------------------------------------------------------------- results


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
    """Per item, the first source's mean score minus the second's, over the item's raters."""

    criterion: str
    first: str
    second: str
    n_items: int
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
    n_items: int
    n_responses: int
    n_raters: int
    scores: list[SourceScores]
    paired: list[PairedDifference]
    preference: list[Share]  # each source, then tie; out of every answer
    preference_test: StatTest  # first source against second, ties left out
    agreement: dict[str, Coefficient]  # criterion -> ordinal alpha; "preference" -> nominal alpha
    first_shown: Share  # answers preferring the query shown first ("A"), ties left out
    first_shown_test: StatTest
    headline: str


@dataclass(frozen=True)
class PreferenceResults:
    study: str
    dataset: str
    systems: tuple[str, ...]
    top_n: int
    n_items: int
    n_responses: int
    n_raters: int
    selections: list[Share]  # per system: picks credited to it, out of every answer
    n_shared: int  # picks credited to two or more systems (they ranked the item equally high)
    by_position: list[Share]  # picks per display position ("Option 1" is shown first)
    agreement: Coefficient  # nominal alpha over the chosen item
    headline: str


@dataclass
class _Row:
    item: StudyItem
    assignment: StudyAssignment
    response: StudyResponse
    rater: str


def _closed_rows(s: Session, name: str) -> tuple[Study, list[_Row], int]:
    study = _study(s, name)
    if study.status != CLOSED:
        raise ResultsSealed(
            f"the study {name!r} is open: its scores stay sealed until it is closed (progress is shown meanwhile)"
        )
    rows = [
        _Row(item, a, r, rater)
        for item, a, r, rater in s.execute(
            select(StudyItem, StudyAssignment, StudyResponse, User.name)
            .join(StudyAssignment, StudyAssignment.study_item_id == StudyItem.id)
            .join(StudyResponse, StudyResponse.assignment_id == StudyAssignment.id)
            .join(User, User.id == StudyAssignment.rater_id)
            .where(StudyItem.study_id == study.id)
            .order_by(StudyItem.position, User.name)
        )
    ]
    n_items = s.scalar(select(func.count()).select_from(StudyItem).where(StudyItem.study_id == study.id))
    return study, rows, n_items or 0


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{round(100 * rate)} %"


@allow(Role.ADMIN)
def quality_results(
    db: Database, actor: Actor, name: str, *, n_resamples: int = N_RESAMPLES
) -> QualityResults:
    """The figures of a closed query-quality study, unblinded.

    Raises:
        ResultsSealed: the study is still open.
    """
    with db.read() as s:
        study, rows, n_items = _closed_rows(s, name)
        dataset = s.get(Dataset, study.dataset_id).name
    if study.kind != KIND_QUALITY:
        raise ValidationError(f"{name!r} is a system-preference study")
    first, second = study.config["sources"]
    criteria = tuple(c.name for c in _rubric_of(study.config))
    raters = sorted({r.rater for r in rows})

    # ratings[criterion][source][item position] -> {rater: score}
    ratings: dict[str, dict[str, dict[int, dict[str, int]]]] = {
        c: {first: defaultdict(dict), second: defaultdict(dict)} for c in criteria
    }
    preferred: dict[int, dict[str, str]] = defaultdict(dict)
    for row in rows:
        mapping, response = row.response.mapping, row.response
        for c in criteria:
            for label in (A, B):
                ratings[c][mapping[label]][row.item.position][row.rater] = response.scores[c][label]
        preferred[row.item.position][row.rater] = (
            mapping[response.preference] if response.preference in (A, B) else TIE
        )

    scores: list[SourceScores] = []
    paired: list[PairedDifference] = []
    agreement: dict[str, Coefficient] = {}
    for c in criteria:
        for source in (first, second):
            per_item = ratings[c][source]
            values = [v for by_rater in per_item.values() for v in by_rater.values()]
            ci = mean_ci(
                [sum(d.values()) for d in per_item.values()],
                [len(d) for d in per_item.values()],
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
        items = sorted(ratings[c][first])
        diffs = [
            float(np.mean([ratings[c][first][i][r] - ratings[c][second][i][r] for r in ratings[c][first][i]]))
            for i in items
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
        units = [[ratings[c][source][i].get(r) for r in raters] for i in items for source in (first, second)]
        agreement[c] = agreement_stats.krippendorff_alpha(units, level="ordinal", categories=list(SCALE))
    units = [[preferred[i].get(r) for r in raters] for i in sorted(preferred)]
    agreement["preference"] = agreement_stats.krippendorff_alpha(units, level="nominal")

    answers = Counter(v for by_rater in preferred.values() for v in by_rater.values())
    n = len(rows)
    preference = [
        share(first, answers[first], n),
        share(second, answers[second], n),
        share(TIE, answers[TIE], n),
    ]
    decisive = answers[first] + answers[second]
    shown_first = sum(1 for r in rows if r.response.preference == A)
    overall = next((x for x in scores if x.criterion == criteria[0] and x.source == first), None)
    other = next((x for x in scores if x.criterion == criteria[0] and x.source == second), None)

    def fmt(x: SourceScores | None) -> str:
        return "—" if x is None or x.mean is None else f"{x.mean:.2f}"

    headline = (
        f"{first} {fmt(overall)} vs {second} {fmt(other)}; "
        f"preference {_pct(preference[0].rate)} vs {_pct(preference[1].rate)}, tie {_pct(preference[2].rate)}"
    )
    return QualityResults(
        study=study.name,
        dataset=dataset,
        sources=(first, second),
        criteria=criteria,
        n_items=n_items,
        n_responses=n,
        n_raters=len(raters),
        scores=scores,
        paired=paired,
        preference=preference,
        preference_test=binomial_test(answers[first], decisive),
        agreement=agreement,
        first_shown=share("first shown (A)", shown_first, decisive),
        first_shown_test=binomial_test(shown_first, decisive),
        headline=headline,
    )


def credited(ranks: Mapping[str, int]) -> list[str]:
    """The systems a pick is credited to: those that ranked the chosen item highest."""
    best = min(ranks.values())
    return sorted(system for system, rank in ranks.items() if rank == best)


@allow(Role.ADMIN)
def preference_results(db: Database, actor: Actor, name: str) -> PreferenceResults:
    """The figures of a closed system-preference study: selection rate per system.

    Raises:
        ResultsSealed: the study is still open.
    """
    with db.read() as s:
        study, rows, n_items = _closed_rows(s, name)
        dataset = s.get(Dataset, study.dataset_id).name
    if study.kind != KIND_PREFERENCE:
        raise ValidationError(f"{name!r} is a query-quality study")
    systems = tuple(study.config["systems"])
    raters = sorted({r.rater for r in rows})
    picks: Counter[str] = Counter()
    positions: Counter[int] = Counter()
    n_shared = 0
    chosen: dict[int, dict[str, int]] = defaultdict(dict)
    max_options = 0
    for row in rows:
        option = row.response.mapping[row.response.preference]
        winners = credited(option["ranks"])
        picks.update(winners)
        n_shared += len(winners) > 1
        positions[int(row.response.preference.split()[-1])] += 1
        max_options = max(max_options, len(row.response.mapping))
        chosen[row.item.position][row.rater] = option["item_id"]
    n = len(rows)
    selections = sorted((share(x, picks[x], n) for x in systems), key=lambda sh: (-sh.count, sh.label))
    units = [[chosen[i].get(r) for r in raters] for i in sorted(chosen)]
    headline = " · ".join(f"{sh.label} {_pct(sh.rate)}" for sh in selections)
    return PreferenceResults(
        study=study.name,
        dataset=dataset,
        systems=systems,
        top_n=int(study.config.get("top_n", 1)),
        n_items=n_items,
        n_responses=n,
        n_raters=len(raters),
        selections=selections,
        n_shared=n_shared,
        by_position=[share(f"Option {k}", positions[k], n) for k in range(1, max_options + 1)],
        agreement=agreement_stats.krippendorff_alpha(units, level="nominal"),
        headline=headline,
    )


@allow(Role.ADMIN)
def study_results(db: Database, actor: Actor, name: str) -> QualityResults | PreferenceResults:
    """The results of a closed study of either kind."""
    with db.read() as s:
        kind = _study(s, name).kind
    return quality_results(db, actor, name) if kind == KIND_QUALITY else preference_results(db, actor, name)


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
            "item": row.item.position + 1,
            "group": row.item.group_key,
            "rater": row.rater,
            "queue_position": row.assignment.position + 1,
        }
        if study.kind == KIND_QUALITY:
            queries = row.item.payload["queries"]
            record.update(
                {
                    "A_source": mapping[A],
                    "B_source": mapping[B],
                    "A_query": queries[mapping[A]]["ext_id"],
                    "B_query": queries[mapping[B]]["ext_id"],
                }
            )
            for c in _rubric_of(study.config):
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
                    "query": row.item.payload["query"]["ext_id"],
                    "choice": r.preference,
                    "chosen_item": ext_ids.get(option["item_id"]),
                    "credited": ",".join(credited(option["ranks"])),
                    "options": "; ".join(
                        f"{label}={ext_ids.get(o['item_id'])} "
                        + ",".join(f"{k}#{v}" for k, v in sorted(o["ranks"].items()))
                        for label, o in sorted(mapping.items(), key=lambda kv: int(kv[0].split()[-1]))
                    ),
                }
            )
        record["comment"] = r.comment
        record["answered_at"] = _aware(r.created_at).isoformat() if r.created_at else None
        records.append(record)
    return pd.DataFrame.from_records(records)


# --------------------------------------------------------------------------- tables, text and charts


def _interval(low: float | None, high: float | None, digits: int = 2, percent: bool = False) -> str:
    if low is None or high is None:
        return "—"
    if percent:
        return f"[{100 * low:.0f} %, {100 * high:.0f} %]"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _p(test: StatTest) -> str:
    return f"p = {test.p_value:.3g}" if test.p_value is not None else f"— ({test.reason})"


def _alpha(c: Coefficient) -> str:
    return f"{c.value:.3f}" if c.value is not None else f"— ({c.reason})"


def summary_table(results: QualityResults | PreferenceResults) -> pd.DataFrame:
    """The results table: per source, mean and interval and preference and interval (MCMR's);
    per system, selection rate and interval (MERIT's)."""
    if isinstance(results, PreferenceResults):
        return pd.DataFrame(
            [
                {
                    "system": sh.label,
                    "picks": sh.count,
                    "answers": sh.n,
                    "selection rate": sh.rate,
                    "95 % CI (Wilson)": _interval(sh.low, sh.high, percent=True),
                }
                for sh in results.selections
            ]
        )
    criterion = results.criteria[0]
    by_source = {x.source: x for x in results.scores if x.criterion == criterion}
    rows = []
    for sh in results.preference:
        x = by_source.get(sh.label)
        rows.append(
            {
                "source": sh.label,
                f"mean {criterion}": None if x is None else x.mean,
                "95 % CI (bootstrap)": "" if x is None else _interval(x.low, x.high),
                "ratings": None if x is None else x.n,
                "preferred": sh.rate,
                "95 % CI (Wilson)": _interval(sh.low, sh.high, percent=True),
                "answers": sh.count,
            }
        )
    return pd.DataFrame(rows)


def distribution_table(results: QualityResults) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "criterion": x.criterion,
                "source": x.source,
                "score": k,
                "ratings": v,
                "share": v / x.n if x.n else 0.0,
            }
            for x in results.scores
            for k, v in x.distribution.items()
        ]
    )


def report_lines(results: QualityResults | PreferenceResults) -> list[str]:
    """The results as text lines (the CLI prints them; the page shows the same figures)."""
    if isinstance(results, PreferenceResults):
        lines = [
            f"System preference study {results.study} on {results.dataset}: {results.n_items} queries, "
            f"{results.n_responses} answers from {results.n_raters} raters, top-{results.top_n} results",
            results.headline,
            "Selection rate per system (picks credited to the system that ranked the chosen item highest):",
        ]
        for sh in results.selections:
            lines.append(
                f"  {sh.label:<16} {sh.count:>5} / {sh.n}  {_pct(sh.rate):>6}  95 % CI {_interval(sh.low, sh.high, percent=True)}"
            )
        lines.append(f"Picks shared by systems that ranked the item equally high: {results.n_shared}")
        lines.append(
            "Picks by position shown: " + ", ".join(f"{sh.label} {sh.count}" for sh in results.by_position)
        )
        lines.append(f"Krippendorff's alpha (nominal, chosen item): {_alpha(results.agreement)}")
        return lines
    first, second = results.sources
    lines = [
        f"Query quality study {results.study} on {results.dataset}: {results.n_items} targets, "
        f"{results.n_responses} answers from {results.n_raters} raters",
        results.headline,
    ]
    for c in results.criteria:
        lines.append(f"{c} (1-5):")
        for x in (x for x in results.scores if x.criterion == c):
            mean = "—" if x.mean is None else f"{x.mean:.2f}"
            dist = " ".join(f"{k}:{v}" for k, v in x.distribution.items())
            lines.append(
                f"  {x.source:<12} mean {mean}  95 % CI {_interval(x.low, x.high)}  n={x.n}  [{dist}]"
            )
        d = next(d for d in results.paired if d.criterion == c)
        mean = "—" if d.mean is None else f"{d.mean:+.2f}"
        stat = "" if d.test.statistic is None else f"W = {d.test.statistic:g}, "
        lines.append(
            f"  paired difference {first} − {second}: {mean} {_interval(d.low, d.high)} over {d.n_items} targets; "
            f"Wilcoxon signed-rank {stat}{_p(d.test)}"
        )
        lines.append(f"  Krippendorff's alpha (ordinal): {_alpha(results.agreement[c])}")
    lines.append("Preference:")
    for sh in results.preference:
        lines.append(
            f"  {sh.label:<12} {sh.count:>5} / {sh.n}  {_pct(sh.rate):>6}  95 % CI {_interval(sh.low, sh.high, percent=True)}"
        )
    t = results.preference_test
    lines.append(f"  binomial test {first} vs {second} (ties left out, n = {t.n}): {_p(t)}")
    lines.append(f"  Krippendorff's alpha (nominal): {_alpha(results.agreement['preference'])}")
    fs = results.first_shown
    lines.append(
        f"Position bias: the query shown first (A) was preferred in {_pct(fs.rate)} of {fs.n} decisive answers "
        f"95 % CI {_interval(fs.low, fs.high, percent=True)}; binomial test {_p(results.first_shown_test)}"
    )
    return lines


def create_lines(report: CreateReport) -> list[str]:
    """What :func:`create_quality_study` / :func:`create_preference_study` did, as text lines."""
    info = report.study
    unit = "targets" if info.kind == KIND_QUALITY else "queries"
    lines = [
        f"created study {info.name} ({info.kind}) on {info.dataset}: {info.n_items} {unit}, "
        f"{info.n_assignments} assignments, {info.raters_per_item} raters per item, seed {info.seed}"
    ]
    asked = f" (asked for {report.sample})" if report.sample > info.n_items else ""
    lines.append(f"  sampled {info.n_items} of {report.n_eligible} eligible {unit}{asked}")
    for reason, n in sorted(report.skipped.items()):
        lines.append(f"  left out: {n} x {reason}")
    lines.append("  raters: " + ", ".join(f"{rater} {n}" for rater, n in report.load.items()))
    if report.first_shown:
        lines.append(
            "  shown as A: " + ", ".join(f"{src} {n}" for src, n in sorted(report.first_shown.items()))
        )
    return lines


def progress_lines(progress: StudyProgress) -> list[str]:
    lines = [
        f"study {progress.study} ({progress.status}): {progress.n_answered} of {progress.n_assignments} answered, "
        f"{progress.n_items} items"
    ]
    lines += [f"  {r.rater:<20} {r.answered:>5} / {r.total}" for r in progress.raters]
    return lines


def distribution_chart(results: QualityResults, criterion: str) -> alt.Chart:
    """Score distribution per source for one criterion: grouped bars of the share of ratings."""
    frame = distribution_table(results)
    frame = frame[frame["criterion"] == criterion]
    return (
        alt.Chart(frame, title=f"{criterion}: score distribution")
        .mark_bar()
        .encode(
            x=alt.X("score:O", title="score"),
            xOffset="source:N",
            y=alt.Y("share:Q", title="share of ratings", axis=alt.Axis(format="%")),
            color=alt.Color("source:N", title="source"),
            tooltip=["source", "score", "ratings", alt.Tooltip("share:Q", format=".1%")],
        )
    )


def _shares_chart(shares: Sequence[Share], what: str, title: str) -> alt.LayerChart:
    frame = pd.DataFrame(
        [
            {what: sh.label, "rate": sh.rate or 0.0, "low": sh.low, "high": sh.high, "count": sh.count}
            for sh in shares
        ]
    )
    base = alt.Chart(frame, title=title).encode(y=alt.Y(f"{what}:N", sort=None, title=None))
    bars = base.mark_bar().encode(
        x=alt.X(
            "rate:Q", title="share of answers", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
        ),
        color=alt.Color(f"{what}:N", legend=None),
        tooltip=[what, "count", alt.Tooltip("rate:Q", format=".1%")],
    )
    whiskers = base.mark_errorbar(ticks=True).encode(x=alt.X("low:Q"), x2="high:Q")
    return alt.layer(bars, whiskers)


def preference_chart(results: QualityResults | PreferenceResults) -> alt.LayerChart:
    """Preference (query quality) or selection rate (system preference) with Wilson intervals."""
    if isinstance(results, PreferenceResults):
        return _shares_chart(results.selections, "system", "Selection rate per system (95 % Wilson CI)")
    return _shares_chart(results.preference, "preferred", "Preference (95 % Wilson CI)")


@allow(Role.ADMIN)
def write_results(db: Database, actor: Actor, name: str, out: Path) -> list[Path]:
    """Write a closed study's results: the report, tables, every response (unblinded), charts.

    Charts are Altair specs, saved as HTML pages and Vega-Lite JSON.
    """
    results = study_results(db, actor, name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(filename: str, text: str) -> None:
        path = out / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)

    put("report.txt", "\n".join(report_lines(results)) + "\n")
    put("summary.csv", summary_table(results).to_csv(index=False))
    put("responses.csv", responses_frame(db, actor, name).to_csv(index=False))
    charts: dict[str, alt.TopLevelMixin] = {"preference": preference_chart(results)}
    if isinstance(results, QualityResults):
        put("distribution.csv", distribution_table(results).to_csv(index=False))
        for c in results.criteria:
            charts[f"distribution_{c.replace(' ', '_')}"] = distribution_chart(results, c)
    for stem, chart in charts.items():
        put(f"{stem}.vl.json", chart.to_json())
        put(f"{stem}.html", chart.to_html())
    return written
