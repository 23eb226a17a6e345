"""Blind studies: sampling, raters, counterbalancing, blinding, sealing, locking and the statistics."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cli.main import app as cli_app
from db.models import Candidate, Dataset, Item, Query, RankerRun, User
from db.session import Database
from db.studies import Study, StudyAssignment, StudyResponse, StudyTrial
from demo.writer import generate_demo
from services.core.auth import SYSTEM, Actor
from services.core.errors import PermissionDenied, ValidationError
from services.ingest.importer import import_bundle
from services.study.admin import StudyProgress, close_study, study_progress
from services.study.create import CreateReport, create_preference_study, create_quality_study
from services.study.design import TIE, assign_raters, counterbalance
from services.study.rating import (
    Answer,
    PreferenceTrial,
    QualityTrial,
    StudyClosed,
    load_trial,
    my_queue,
    my_studies,
    next_assignment,
    submit_answer,
)
from services.study.results import (
    ResultsSealed,
    credited,
    preference_results,
    quality_results,
    responses_frame,
    study_results,
)
from services.study.rubric import DEFAULT_RUBRIC, Criterion
from services.study.stats import binomial_test, mean_ci, wilcoxon_test, wilson
from tests.bundles import jpeg_bytes, make_bundle, write_jsonl, write_qrels
from ui.charts.study import distribution_chart, preference_chart
from ui.exports.study import write_results
from ui.reports.study import headline, report_lines, summary_table

GEN, HUM = "generated", "human"
SOURCES = (GEN, HUM)
RATERS = ("admin", "ann1", "ann2", "reviewer")


def make_pair_bundle(root: Path, n_groups: int = 8) -> Path:
    """Targets it1..itN, each with a generated and a human query in one group, and a lone query."""
    (root / "images").mkdir(parents=True)
    items = []
    for n in range(1, n_groups + 2):
        (root / "images" / f"it{n}.jpg").write_bytes(jpeg_bytes((20 * n % 255, 90, 160), size=(64, 48)))
        items.append(
            {
                "id": f"it{n}",
                "title": f"Lamp {n}",
                "text": f"A lamp, number {n}",
                "image": f"images/it{n}.jpg",
            }
        )
    write_jsonl(root / "items.jsonl", items)
    queries, qrels = [], []
    for n in range(1, n_groups + 1):
        for source, text in ((GEN, f"I need lamp {n} in brass"), (HUM, f"hi, lamp {n}?? the brass one")):
            ext = f"QID-{source[:3].upper()}-{n:03d}"
            queries.append({"id": ext, "text": text, "source": source, "group": f"grp{n:03d}"})
            qrels.append((ext, f"it{n}", 1))
    queries.append({"id": "QID-LONE", "text": "a lamp", "source": GEN})
    qrels.append(("QID-LONE", "it1", 1))
    write_jsonl(root / "queries.jsonl", queries)
    write_qrels(root / "qrels.tsv", qrels)
    return root


@pytest.fixture
def paired(db: Database, tmp_path: Path, data_dir: Path, users: dict[str, Actor]) -> dict[str, Actor]:
    import_bundle(db, make_pair_bundle(tmp_path / "pairs"), "pairs")
    return users


def create(db: Database, name: str = "study-1", **kw) -> CreateReport:
    args = {
        "dataset": "pairs",
        "name": name,
        "sources": SOURCES,
        "sample": 100,
        "raters_per_trial": 3,
        "seed": 7,
    }
    return create_quality_study(db, SYSTEM, **{**args, **kw})


def mappings(db: Database, name: str) -> list[tuple[int, str, dict]]:
    """(item position, rater name, mapping) of every assignment: what only the test may read."""
    with db.read() as s:
        return [
            (pos, rater, mapping)
            for pos, rater, mapping in s.execute(
                select(StudyTrial.position, User.name, StudyAssignment.mapping)
                .join(StudyTrial, StudyTrial.id == StudyAssignment.trial_id)
                .join(User, User.id == StudyAssignment.rater_id)
                .join(Study, Study.id == StudyTrial.study_id)
                .where(Study.name == name)
                .order_by(StudyTrial.position, User.name)
            )
        ]


def groups(db: Database, name: str) -> list[str]:
    with db.read() as s:
        return list(
            s.scalars(
                select(StudyTrial.group_key)
                .join(Study)
                .where(Study.name == name)
                .order_by(StudyTrial.position)
            )
        )


def answer_all(db: Database, users: dict[str, Actor], name: str, decide) -> None:
    """Every rater answers every item; ``decide(position, rater, mapping) -> Answer``."""
    by_rater = {}
    with db.read() as s:
        for aid, pos, rater, mapping in s.execute(
            select(StudyAssignment.id, StudyTrial.position, User.name, StudyAssignment.mapping)
            .join(StudyTrial, StudyTrial.id == StudyAssignment.trial_id)
            .join(User, User.id == StudyAssignment.rater_id)
            .join(Study, Study.id == StudyTrial.study_id)
            .where(Study.name == name)
        ):
            by_rater.setdefault(rater, []).append((aid, pos, mapping))
    for rater, rows in by_rater.items():
        for aid, pos, mapping in rows:
            submit_answer(db, users[rater], aid, decide(pos, rater, mapping))


def by_source(mapping: dict, scores: dict[str, int], preferred: str) -> Answer:
    """An answer given as scores per source, turned into what the rater saw (A/B)."""
    label = {source: lab for lab, source in mapping.items()}
    return Answer(
        scores={"overall": {label[src]: v for src, v in scores.items()}},
        preference=TIE if preferred == TIE else label[preferred],
    )


# --------------------------------------------------------------------------- design


def test_counterbalance_is_exactly_balanced_over_a_whole_study(db: Database, paired) -> None:
    report = create(db)  # 8 targets x 3 raters = 24 assignments
    assert report.study.n_trials == 8 and report.study.n_assignments == 24
    assert report.first_shown == {GEN: 12, HUM: 12}
    shown = mappings(db, "study-1")
    assert Counter(m["A"] for _, _, m in shown) == {GEN: 12, HUM: 12}
    for key in (0, 1):  # per item and per rater: as equal as an odd count allows
        groups: dict = {}
        for row in shown:
            groups.setdefault(row[key], []).append(row[2]["A"] == GEN)
        assert all(abs(2 * sum(v) - len(v)) == len(v) % 2 for v in groups.values()), groups
    assert all(sorted(m.values()) == sorted(SOURCES) for _, _, m in shown)

    # The odd case, documented: 7 targets x 3 raters = 21 assignments, one source first once more.
    odd = create(db, "study-odd", sample=7)
    assert sorted(odd.first_shown.values()) == [10, 11]


def test_counterbalance_balances_every_trial_and_rater_on_any_design() -> None:
    for case in range(300):
        rng = random.Random(case)
        n_trials, n_raters = rng.randint(1, 25), rng.randint(1, 7)
        per_trial = rng.randint(1, n_raters)
        excluded = [
            {rng.randrange(n_raters)} if rng.random() < 0.2 and per_trial < n_raters else set()
            for _ in range(n_trials)
        ]
        chosen = assign_raters(n_trials, list(range(n_raters)), per_trial, excluded, case)
        pairs = [(i, r) for i, picked in enumerate(chosen) for r in picked]
        sides = counterbalance(pairs, case)
        assert abs(2 * sum(sides) - len(pairs)) == len(pairs) % 2
        surplus: Counter = Counter()
        for (i, r), first in zip(pairs, sides, strict=True):
            surplus["i", i] += 1 if first else -1
            surplus["r", r] += 1 if first else -1
        assert all(abs(v) <= 1 for v in surplus.values()), case
        assert all(r not in excluded[i] for i, r in pairs)
        assert sides == counterbalance(pairs, case)  # reproducible


def test_sample_and_raters_are_reproducible_and_balanced(db: Database, paired) -> None:
    first = create(db, "s-a", sample=5, seed=11)
    again = create(db, "s-b", sample=5, seed=11)
    assert mappings(db, "s-a") == mappings(db, "s-b")
    assert first.load == again.load and sorted(first.load.values()) == [3, 4, 4, 4]
    assert groups(db, "s-a") == groups(db, "s-b") and len(groups(db, "s-a")) == 5
    others = {
        tuple(groups(db, create(db, f"s-{seed}", sample=5, seed=seed).study.name)) for seed in (1, 2, 3)
    }
    assert len(others) > 1  # another seed, another sample
    assert first.n_eligible == 8 and first.skipped == {}


def test_authors_never_rate_their_own_queries(db: Database, paired) -> None:
    with db.write() as s:
        s.execute(update(Query).where(Query.ext_id == "QID-HUM-001").values(author_id=paired["ann1"].id))
    create(db, raters=["ann1", "ann2", "reviewer"], raters_per_trial=2)
    shown = mappings(db, "study-1")
    assert not [r for pos, r, _ in shown if pos == 0 and r == "ann1"]
    assert sorted(r for pos, r, _ in shown if pos == 0) == ["ann2", "reviewer"]
    with pytest.raises(ValidationError, match="eligible rater"):
        create(db, "too-few", raters=["ann1", "ann2"], raters_per_trial=2)


def test_creation_is_checked(db: Database, paired) -> None:
    with pytest.raises(ValidationError, match="may not name 'human'"):
        create(db, "human check")
    with pytest.raises(ValidationError, match="exactly two"):
        create(db, sources=(GEN,))
    with pytest.raises(ValidationError, match="no query group"):
        create(db, sources=(GEN, "expert"))
    with pytest.raises(ValidationError, match="not active users"):
        create(db, raters=["ghost", "ann1", "ann2"])
    with pytest.raises(ValidationError, match="1 to 3 criteria"):
        create(db, rubric=[Criterion(f"c{n}", "q", ("a",) * 5) for n in range(4)])
    with pytest.raises(ValidationError, match="may not name 'generated'"):
        create(db, rubric=[Criterion("overall", "Is it a generated query?", ("a",) * 5)])
    with pytest.raises(ValidationError, match="one anchor text for each score"):
        create(db, rubric=[Criterion("overall", "q", ("a",) * 4)])
    with pytest.raises(PermissionDenied):
        create_quality_study(db, paired["ann1"], dataset="pairs", name="x")
    create(db)
    with pytest.raises(ValidationError, match="exists already"):
        create(db)


# --------------------------------------------------------------------------- blinding


def _walk(value, path: str = ""):
    """Every (field path, leaf value) of a dataclass tree."""
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}[{k}]", k
            yield from _walk(v, f"{path}[{k}]")
    elif isinstance(value, list | tuple):
        for n, v in enumerate(value):
            yield from _walk(v, f"{path}[{n}]")
    else:
        yield path, value


def test_rater_task_shows_texts_and_labels_only(db: Database, paired) -> None:
    create(db, rubric=[*DEFAULT_RUBRIC, Criterion("fluency", "How fluent?", tuple("abcde"))])
    with db.read() as s:
        texts = dict(s.execute(select(Query.text, Query.source)).all())
    ann1 = paired["ann1"]
    queue = my_queue(db, ann1, "study-1")
    assert len(queue) == 6 and [e.number for e in queue] == list(range(1, 7))
    for entry in queue:
        trial = load_trial(db, ann1, entry.assignment_id)
        assert isinstance(trial, QualityTrial)
        assert [q.label for q in trial.queries] == ["A", "B"]
        assert {texts[q.text] for q in trial.queries} == set(SOURCES)  # both queries, in some order
        assert [c.name for c in trial.rubric] == ["overall", "fluency"]
        for path, value in _walk(trial):
            assert not re.search(r"source|query_id|mapping|payload|group", path), path
            if isinstance(value, str):
                assert value not in SOURCES and "QID" not in value and "grp" not in value, (path, value)
        assert not ({f.name for f in dataclasses.fields(trial)} & {"query_ids", "sources", "mapping"})
        assert not re.search(r"generated|human|QID|grp\d", repr(trial))
    # Another rater's answer is not part of this rater's trial.
    shared = next(
        a
        for a in my_queue(db, paired["ann2"], "study-1")
        if load_trial(db, paired["ann2"], a.assignment_id).targets[0].item_id
        in {load_trial(db, ann1, e.assignment_id).targets[0].item_id for e in queue}
    )
    submit_answer(
        db,
        paired["ann2"],
        shared.assignment_id,
        Answer({"overall": {"A": 5, "B": 1}, "fluency": {"A": 5, "B": 1}}, "A", "A wins"),
    )
    for entry in queue:
        trial = load_trial(db, ann1, entry.assignment_id)
        assert trial.my_scores == {} and trial.my_preference is None and trial.my_comment == ""
    assert [s.answered for s in my_studies(db, ann1)] == [0]


def test_raters_reach_only_their_own_items(db: Database, paired) -> None:
    create(db, raters=["ann1", "ann2", "reviewer"], raters_per_trial=2)
    theirs = my_queue(db, paired["ann2"], "study-1")[0].assignment_id
    mine = {e.assignment_id for e in my_queue(db, paired["ann1"], "study-1")}
    if theirs not in mine:
        with pytest.raises(PermissionDenied, match="not in your study queue"):
            load_trial(db, paired["ann1"], theirs)
        with pytest.raises(PermissionDenied, match="not in your study queue"):
            submit_answer(db, paired["ann1"], theirs, Answer({"overall": {"A": 1, "B": 1}}, "tie"))
    with pytest.raises(PermissionDenied, match="not in your study queue"):
        load_trial(db, paired["ann1"], 10_000)
    with pytest.raises(PermissionDenied, match="user account"):
        my_studies(db, SYSTEM)
    assert my_studies(db, paired["admin"]) == []  # not a rater of this study


def test_admin_sees_only_counts_while_open(db: Database, paired) -> None:
    create(db)
    ann1 = paired["ann1"]
    aid = next_assignment(db, ann1, "study-1")
    submit_answer(db, ann1, aid, Answer({"overall": {"A": 2, "B": 5}}, "B", "clearer"))
    progress = study_progress(db, SYSTEM, "study-1")
    assert (progress.status, progress.n_answered, progress.n_assignments) == ("open", 1, 24)
    assert {r.rater: (r.answered, r.total) for r in progress.raters}["ann1"] == (1, 6)
    assert {f.name for f in dataclasses.fields(StudyProgress)} == {
        "study",
        "status",
        "n_trials",
        "n_assignments",
        "n_answered",
        "raters",
    }
    for sealed in (quality_results, responses_frame, study_results):
        with pytest.raises(ResultsSealed, match="sealed until it is closed"):
            sealed(db, SYSTEM, "study-1")
    with pytest.raises(ResultsSealed):
        write_results(db, SYSTEM, "study-1", Path("unused"))
    for who in ("ann1", "reviewer"):
        with pytest.raises(PermissionDenied):
            study_progress(db, paired[who], "study-1")
        with pytest.raises(PermissionDenied):
            close_study(db, paired[who], "study-1")


def test_closed_study_refuses_answers(db: Database, paired) -> None:
    create(db)
    ann1 = paired["ann1"]
    first, second = (e.assignment_id for e in my_queue(db, ann1, "study-1")[:2])
    submit_answer(db, ann1, first, Answer({"overall": {"A": 4, "B": 3}}, "A"))
    closed = close_study(db, SYSTEM, "study-1")
    assert closed.status == "closed" and closed.closed_at is not None
    assert close_study(db, SYSTEM, "study-1").closed_at == closed.closed_at  # harmless twice
    for aid in (first, second):  # neither a change nor a new answer
        with pytest.raises(StudyClosed, match="is closed"):
            submit_answer(db, ann1, aid, Answer({"overall": {"A": 1, "B": 1}}, "tie"))
    with db.read() as s:
        assert s.scalars(select(StudyResponse.scores)).all() == [{"overall": {"A": 4, "B": 3}}]
    assert not load_trial(db, ann1, second).is_open
    assert quality_results(db, SYSTEM, "study-1", n_resamples=200).n_responses == 1


def test_answers_are_idempotent_and_checked(db: Database, paired) -> None:
    create(db)
    ann1 = paired["ann1"]
    queue = my_queue(db, ann1, "study-1")
    aid = queue[0].assignment_id
    following = submit_answer(db, ann1, aid, Answer({"overall": {"A": 4, "B": 3}}, "A"))
    assert following == queue[1].assignment_id
    submit_answer(db, ann1, aid, Answer({"overall": {"A": 2, "B": 5}}, "B", " better wording "))
    with db.read() as s:
        rows = s.scalars(select(StudyResponse).where(StudyResponse.assignment_id == aid)).all()
        mapping = s.get(StudyAssignment, aid).mapping
    assert len(rows) == 1
    assert (rows[0].scores, rows[0].preference, rows[0].comment) == (
        {"overall": {"A": 2, "B": 5}},
        "B",
        "better wording",
    )
    assert rows[0].mapping == mapping  # stored with the answer
    trial = load_trial(db, ann1, aid)
    assert (trial.my_scores, trial.my_preference, trial.answered) == ({"overall": {"A": 2, "B": 5}}, "B", 1)
    for bad, message in (
        (Answer({"overall": {"A": 6, "B": 3}}, "A"), "from 1 to 5"),
        (Answer({"overall": {"A": 4}}, "A"), "score query B"),
        (Answer({}, "A"), "score query A"),
        (Answer({"overall": {"A": 4, "B": 3}}, None), "A, B or tie"),
        (Answer({"overall": {"A": 4, "B": 3}}, "human"), "A, B or tie"),
        (Answer({"overall": {"A": 4, "B": 3}}, "A", "x" * 2001), "comment"),
    ):
        with pytest.raises(ValidationError, match=message):
            submit_answer(db, ann1, aid, bad)


# --------------------------------------------------------------------------- statistics


def test_statistics_helpers_against_hand_computed_values() -> None:
    # Wilson, 47 of 100: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.95996.
    z, p, n = 1.959964, 0.47, 100
    centre, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson(47, 100)
    assert (
        low == pytest.approx((centre - half) / (1 + z * z / n), abs=1e-5) == pytest.approx(0.3751, abs=1e-4)
    )
    assert (
        high == pytest.approx((centre + half) / (1 + z * z / n), abs=1e-5) == pytest.approx(0.5671, abs=1e-4)
    )
    assert wilson(0, 0) is None
    # Binomial, 2 of 10 against 1/2: 2 * (1 + 10 + 45) / 1024.
    assert binomial_test(2, 10).p_value == pytest.approx(112 / 1024)
    assert binomial_test(0, 0).reason == "no decisive answer"
    # Wilcoxon, five positive differences: W = 0, exact p = 2 / 2^5.
    result = wilcoxon_test([1, 2, 3, 4, 5])
    assert (result.statistic, result.p_value) == (0.0, pytest.approx(2 / 32))
    assert wilcoxon_test([0, 0]).reason == "every paired difference is 0"
    # Bootstrap: degenerate, too small, reproducible, and close to mean ± 1.96 sd/sqrt(n) on a big sample.
    assert mean_ci([4, 4, 4], [1, 1, 1]) == (4.0, 4.0)
    assert mean_ci([4], [1]) is None
    values = np.random.default_rng(0).normal(3.0, 1.0, 400)
    ci = mean_ci(values, [1] * 400, seed=3, n_resamples=2000)
    assert ci == mean_ci(values, [1] * 400, seed=3, n_resamples=2000)
    se = values.std(ddof=1) / 20
    assert ci[0] == pytest.approx(values.mean() - 1.96 * se, abs=0.02)
    assert ci[1] == pytest.approx(values.mean() + 1.96 * se, abs=0.02)
    # Items hold several ratings: the interval is around the mean of all of them.
    ci = mean_ci([8, 6, 10, 5], [2, 2, 2, 2], n_resamples=2000)
    assert ci[0] < 29 / 8 < ci[1]


# Hand-made answers for 4 targets x 2 raters (ann1, ann2): scores per source, then the preference.
SCRIPT = {
    0: {"ann1": ((4, 5), HUM), "ann2": ((4, 5), HUM)},
    1: {"ann1": ((3, 4), HUM), "ann2": ((4, 4), TIE)},
    2: {"ann1": ((5, 4), GEN), "ann2": ((5, 3), GEN)},
    3: {"ann1": ((2, 4), HUM), "ann2": ((3, 5), TIE)},
}


def test_quality_results_match_hand_counts(db: Database, paired) -> None:
    create(db, sample=4, raters=["ann1", "ann2"], raters_per_trial=2)
    answer_all(
        db,
        paired,
        "study-1",
        lambda pos, rater, m: by_source(
            m, dict(zip(SOURCES, SCRIPT[pos][rater][0], strict=True)), SCRIPT[pos][rater][1]
        ),
    )
    close_study(db, SYSTEM, "study-1")
    r = quality_results(db, SYSTEM, "study-1", n_resamples=2000)
    assert (r.n_trials, r.n_responses, r.n_raters) == (4, 8, 2)
    gen, hum = r.scores
    assert (gen.source, gen.n, gen.mean) == (GEN, 8, 30 / 8)
    assert (hum.source, hum.n, hum.mean) == (HUM, 8, 34 / 8)
    assert gen.distribution == {1: 0, 2: 1, 3: 2, 4: 3, 5: 2}
    assert hum.distribution == {1: 0, 2: 0, 3: 1, 4: 4, 5: 3}
    assert gen.low < gen.mean < gen.high and hum.low < hum.mean < hum.high
    # Per-target mean differences -1, -0.5, +1.5, -2: W+ = 3, W- = 7; exact p = 2 * 5/16.
    (paired_diff,) = r.paired
    assert (paired_diff.n_trials, paired_diff.mean) == (4, -0.5)
    assert (paired_diff.test.statistic, paired_diff.test.p_value) == (3.0, pytest.approx(10 / 16))
    # Preference: generated 2, human 4, tie 2 of 8; binomial 2 of 6: 2 * (1 + 6 + 15) / 64.
    assert [(x.label, x.count, x.n) for x in r.preference] == [(GEN, 2, 8), (HUM, 4, 8), ("tie", 2, 8)]
    assert (r.preference[1].low, r.preference[1].high) == pytest.approx(wilson(4, 8))
    assert r.preference_test.p_value == pytest.approx(44 / 64)
    # Ordinal alpha over (target, source) units, worked by hand from the coincidence matrix:
    # n = (2:1, 3:3, 4:7, 5:5); 1 - 15 * 180 / 9600.
    assert r.agreement["overall"].value == pytest.approx(1 - 15 * 180 / 9600)
    # Nominal alpha of the preferences: o(h,h)=2, o(g,g)=2, o(h,t)=o(t,h)=2; 1 - 7 * 4 / 40.
    assert r.agreement["preference"].value == pytest.approx(0.3)
    # Position bias: decisive answers that preferred what was shown as A.
    shown_a = sum(1 for pos, rater, m in mappings(db, "study-1") if SCRIPT[pos][rater][1] == m["A"])
    assert (r.first_shown.count, r.first_shown.n) == (shown_a, 6)
    assert headline(r) == "generated 3.75 vs human 4.25; preference 25 % vs 50 %, tie 25 %"
    lines = "\n".join(report_lines(r))
    assert "paired difference generated − human: -0.50" in lines and "p = 0.625" in lines

    frame = responses_frame(db, SYSTEM, "study-1")
    assert len(frame) == 8
    assert set(frame["preferred_source"]) == {GEN, HUM, "tie"}
    row = frame.iloc[0]
    assert row[f"overall_{row['A_source']}"] == row["overall_A"]
    assert row["A_query"].startswith("QID-" + row["A_source"][:3].upper())


def _add_run(db: Database, dataset: str, name: str, lists: dict[str, list[str]]) -> None:
    with db.write() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == dataset))
        items = dict(s.execute(select(Item.ext_id, Item.id).where(Item.dataset_id == ds.id)).all())
        queries = dict(s.execute(select(Query.ext_id, Query.id).where(Query.dataset_id == ds.id)).all())
        run = RankerRun(dataset_id=ds.id, name=name, kind="ranker")
        s.add(run)
        s.flush()
        for q, ranked in lists.items():
            for rank, ext in enumerate(ranked, start=1):
                s.add(
                    Candidate(
                        run_id=run.id, query_id=queries[q], item_id=items[ext], rank=rank, score=1 / rank
                    )
                )


@pytest.fixture
def ranked(db: Database, tmp_path: Path, data_dir: Path, users: dict[str, Actor]) -> dict[str, Actor]:
    """q1..q3 ranked by clip_image, bm25 and hybrid; hybrid's top 1 is always clip_image's."""
    import_bundle(db, make_bundle(tmp_path / "shop", n_items=6, n_queries=3), "shop")
    for name, ranked in (
        ("clip_image", ["it1", "it2", "it3"]),
        ("bm25", ["it4", "it1", "it5"]),
        ("hybrid", ["it1", "it6", "it4"]),
    ):
        _add_run(db, "shop", name, {q: ranked for q in ("q1", "q2", "q3")})
    return users


def test_preference_study_merges_shuffles_and_credits(db: Database, ranked, tmp_path: Path) -> None:
    report = create_preference_study(
        db,
        SYSTEM,
        dataset="shop",
        name="pick-1",
        systems=["clip_image", "bm25", "hybrid"],
        top_n=1,
        raters=["ann1", "ann2"],
        raters_per_trial=2,
        seed=3,
    )
    assert report.study.n_trials == 3 and report.study.compared == ("clip_image", "bm25", "hybrid")
    with db.read() as s:
        options = s.scalars(select(StudyTrial.payload)).first()["options"]
    # it1 is top-1 of clip_image and hybrid: shown once.
    assert options == [
        {"item_id": options[0]["item_id"], "ranks": {"clip_image": 1, "hybrid": 1}},
        {"item_id": options[1]["item_id"], "ranks": {"bm25": 1}},
    ]
    ann1 = ranked["ann1"]
    trial = load_trial(db, ann1, next_assignment(db, ann1, "pick-1"))
    assert isinstance(trial, PreferenceTrial)
    assert [o.label for o in trial.options] == ["Option 1", "Option 2"]
    assert sorted(o.card.ext_id for o in trial.options) == ["it1", "it4"]
    assert not re.search(r"clip|bm25|hybrid|ranks|q\d", repr(trial).replace(trial.query_text, ""))
    # The two raters of a query see its options in different positions (Latin rotation).
    first_shown = Counter()
    for pos, _rater, m in mappings(db, "pick-1"):
        first_shown[pos, m["Option 1"]["item_id"]] += 1
    assert set(first_shown.values()) == {1}

    # ann1 always picks it1 (credited to clip_image and hybrid), ann2 always it4 (bm25).
    with db.read() as s:
        ext = dict(s.execute(select(Item.id, Item.ext_id)).all())
    answer_all(
        db,
        ranked,
        "pick-1",
        lambda pos, rater, m: Answer(
            preference=next(
                label for label, o in m.items() if ext[o["item_id"]] == ("it1" if rater == "ann1" else "it4")
            )
        ),
    )
    with pytest.raises(ValidationError, match="choose the best result"):
        submit_answer(db, ann1, trial.assignment_id, Answer(preference="A"))
    with pytest.raises(ResultsSealed):
        preference_results(db, SYSTEM, "pick-1")
    close_study(db, SYSTEM, "pick-1")
    r = preference_results(db, SYSTEM, "pick-1")
    assert [(x.label, x.count, x.n) for x in r.selections] == [
        ("bm25", 3, 6),
        ("clip_image", 3, 6),
        ("hybrid", 3, 6),
    ]
    assert r.n_shared == 3 and sum(x.count for x in r.by_position) == 6
    assert (r.selections[0].low, r.selections[0].high) == pytest.approx(wilson(3, 6))
    assert r.agreement.value is not None and r.agreement.value < 0  # the two raters always differ
    frame = responses_frame(db, SYSTEM, "pick-1")
    assert set(frame["credited"]) == {"clip_image,hybrid", "bm25"}

    # Top 3, with a TREC run file as a fourth system: every item shown once, credit to the best rank.
    run = tmp_path / "run.trec"
    run.write_text(
        "".join(
            f"{q} Q0 it{d} {r} {1 / r} mine\n"
            for q in ("q1", "q2", "q3")
            for r, d in ((1, 3), (2, 2), (3, 6))
        )
        + "q9 Q0 it1 1 1.0 mine\n"
    )
    report = create_preference_study(
        db,
        SYSTEM,
        dataset="shop",
        name="pick-3",
        systems=["clip_image", "bm25"],
        run_files={"mine": run},
        top_n=3,
        raters=["ann1", "ann2"],
        raters_per_trial=2,
        seed=3,
    )
    assert report.skipped == {"mine: query not in the dataset": 1}
    with db.read() as s:
        payload = s.scalars(select(StudyTrial.payload).join(Study).where(Study.name == "pick-3")).first()
    ranks = {ext[o["item_id"]]: o["ranks"] for o in payload["options"]}
    assert ranks == {
        "it1": {"clip_image": 1, "bm25": 2},
        "it2": {"clip_image": 2, "mine": 2},
        "it3": {"clip_image": 3, "mine": 1},
        "it4": {"bm25": 1},
        "it5": {"bm25": 3},
        "it6": {"mine": 3},
    }
    assert credited(ranks["it3"]) == ["mine"] and credited(ranks["it2"]) == ["clip_image", "mine"]
    with pytest.raises(ValidationError, match="no ranking named nope"):
        create_preference_study(db, SYSTEM, dataset="shop", name="x", systems=["bm25", "nope"])
    with pytest.raises(ValidationError, match="may not name 'bm25'"):
        create_preference_study(db, SYSTEM, dataset="shop", name="bm25 test", systems=["bm25", "hybrid"])


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def demo_study(db: Database, tmp_path: Path, data_dir: Path, users: dict[str, Actor]) -> dict[str, Actor]:
    """The demo's generated/human variants, a 12-target study with 3 of 4 raters per target."""
    generate_demo(tmp_path / "demo", n_items=160, n_queries=100, seed=5)
    import_bundle(db, tmp_path / "demo", "demo", is_demo=True)
    report = create_quality_study(
        db, SYSTEM, dataset="demo", name="variants", sources=SOURCES, sample=12, raters_per_trial=3, seed=4
    )
    assert report.study.n_trials == 12 and report.first_shown == {GEN: 18, HUM: 18}
    return users


def test_demo_study_end_to_end(db: Database, demo_study, tmp_path: Path) -> None:
    # Simulated raters with a slight taste for the human phrasing and a slight bias to the left.
    def decide(pos: int, rater: str, mapping: dict) -> Answer:
        rng = random.Random(f"{pos}:{rater}")
        scores = {GEN: rng.choice((3, 4, 4, 5)), HUM: rng.choice((4, 4, 5, 5))}
        preferred = (
            max(SOURCES, key=lambda s: (scores[s], s == mapping["A"]))
            if scores[GEN] != scores[HUM] or rng.random() < 0.7
            else "tie"
        )
        return by_source(mapping, scores, preferred)

    answer_all(db, demo_study, "variants", decide)
    assert study_progress(db, SYSTEM, "variants").n_answered == 36
    close_study(db, SYSTEM, "variants")
    results = quality_results(db, SYSTEM, "variants", n_resamples=2000)
    assert re.fullmatch(
        r"generated \d\.\d\d vs human \d\.\d\d; preference \d+ % vs \d+ %, tie \d+ %", headline(results)
    )
    assert results.scores[0].mean < results.scores[1].mean
    table = summary_table(results)
    assert list(table["source"]) == [GEN, HUM, "tie"] and table["95 % CI (bootstrap)"][0].startswith("[")
    for chart in (distribution_chart(results, "overall"), preference_chart(results)):
        spec = chart.to_dict()
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    written = write_results(db, SYSTEM, "variants", tmp_path / "out")
    assert {p.name for p in written} >= {
        "report.txt",
        "summary.csv",
        "responses.csv",
        "distribution.csv",
        "preference.html",
        "preference.vl.json",
        "distribution_overall.html",
    }
    assert headline(results) in (tmp_path / "out" / "report.txt").read_text()
    responses = (tmp_path / "out" / "responses.csv").read_text().splitlines()
    assert len(responses) == 37 and "A_source" in responses[0] and "preferred_source" in responses[0]
    json.loads((tmp_path / "out" / "preference.vl.json").read_text())


def test_cli_study_create_close_results(db: Database, paired, tmp_path: Path) -> None:
    if not db.is_sqlite:
        pytest.skip("the CLI reads QRELS_DB_URL once; SQLite is enough")
    runner = CliRunner()
    args = [
        "study",
        "create",
        "--dataset",
        "pairs",
        "--name",
        "cli-study",
        "--sources",
        "generated,human",
        "--sample",
        "6",
        "--raters-per-trial",
        "2",
        "--seed",
        "3",
    ]
    created = runner.invoke(cli_app, args)
    assert created.exit_code == 0, created.output
    assert "6 targets, 12 assignments" in created.output and "generated 6, human 6" in created.output
    sealed = runner.invoke(cli_app, ["study", "results", "cli-study"])
    assert sealed.exit_code == 1 and "sealed" in sealed.output
    answer_all(db, paired, "cli-study", lambda pos, rater, m: by_source(m, {GEN: 4, HUM: 3}, GEN))
    closed = runner.invoke(cli_app, ["study", "close", "cli-study"])
    assert closed.exit_code == 0 and "12 of 12 answered" in closed.output
    results = runner.invoke(cli_app, ["study", "results", "cli-study", "--out", str(tmp_path / "out")])
    assert results.exit_code == 0, results.output
    assert "generated 4.00 vs human 3.00; preference 100 % vs 0 %, tie 0 %" in results.output
    assert (tmp_path / "out" / "responses.csv").is_file()
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(StudyResponse)) == 12
