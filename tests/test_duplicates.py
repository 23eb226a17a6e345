"""Copies in the pool: found without comparing every pair, planted in the demo and found there,
given an annotator's label one judgment each, and reported, added or collapsed by the export."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from db.duplicates import DuplicateGroup, DuplicateMember, ImageSignature
from db.models import Item, Judgment
from db.session import Database
from demo.duplicates import plan_copies
from demo.images import render_item_image
from demo.vocabulary import sample_item_attributes
from demo.writer import generate_demo
from models.embedder import DEMO_CHECKPOINT
from services.annotation.drafts import save_draft
from services.annotation.queue import next_assignment
from services.annotation.submit import LabelInput, QueryWork, submit
from services.annotation.task import load_task
from services.cleaning.policy import Policy
from services.core.errors import ValidationError
from services.datasets.assignment import assign
from services.datasets.settings import update_settings
from services.datasets.truth import truth_rows
from services.duplicates import matching
from services.duplicates.copies import copies_of, dataset_groups, duplicate_overview, duplicate_score
from services.duplicates.groups import find_duplicates
from services.duplicates.signatures import LAYOUT_SIDE, detail_of, resampled
from services.export.export import export_dataset
from services.export.options import ExportOptions
from services.ingest.importer import import_bundle
from services.ranking.embed import embed_dataset
from services.ranking.models import DEMO_SETTINGS
from tests.conftest import make_users
from ui.components.workbench import view

# ----------------------------------------------------------------------------- the numeric side


def test_hash_pairs_are_exactly_the_pairs_within_the_distance() -> None:
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**63, 2_000, dtype=np.int64).astype(np.uint64)
    for i in range(0, 800, 2):  # near pairs at every distance up to 14 bits
        value = int(hashes[i])
        for bit in rng.choice(64, int(rng.integers(0, 15)), replace=False):
            value ^= 1 << int(bit)
        hashes[i + 1] = np.uint64(value)
    hashes[1500:1600] = hashes[1500]  # a crowd sharing one hash
    distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    for t in (0, 1, 5, 7, 9, 12):
        expected = np.argwhere(np.triu(distance <= t, 1))
        assert np.array_equal(matching.hash_pairs(hashes, t), expected), t
    with pytest.raises(ValueError, match="0-15"):
        matching.hash_pairs(hashes, 16)


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_a_slight_crop_is_matched_to_the_part_of_the_original_it_shows() -> None:
    import random

    rng = random.Random(3)
    attributes = sample_item_attributes(rng)
    original = render_item_image(attributes, seed=11)
    cropped = original.crop((4, 2, 187, 186))  # 9 px narrower, 8 px shorter
    other = render_item_image(attributes, seed=12)  # the same kind of product, another photo
    layout = resampled(Image.open(io.BytesIO(_jpeg(cropped))), LAYOUT_SIDE)
    other_layout = resampled(Image.open(io.BytesIO(_jpeg(other))), LAYOUT_SIDE)
    cuts = matching.crop_cuts(original.size, cropped.size)
    assert cuts is not None and cuts == pytest.approx((9 / 192, 8 / 192))
    detail = detail_of(_jpeg(original))
    mean, median = matching.crop_distance(detail, layout, *cuts)
    assert mean < 2.0 and median < 1.0
    assert matching.crop_distance(detail, other_layout, *cuts)[0] > 4.0
    # not a crop: the same size, bigger, or more than 8 % smaller
    assert matching.crop_cuts((192, 192), (192, 192)) is None
    assert matching.crop_cuts((192, 192), (200, 190)) is None
    assert matching.crop_cuts((192, 192), (170, 190)) is None


def test_components_and_their_spanning_tree() -> None:
    assert matching.components(6, [(4, 1), (1, 3), (0, 5)]) == [[0, 5], [1, 3, 4]]
    assert matching.spanning_tree([1, 3, 4], {(4, 1): 0, (1, 3): 0, (3, 4): 0}) == {1: 1, 3: 1, 4: 1}


# ----------------------------------------------------------------------------- the demo's copies


def test_the_demo_plants_copies_of_every_kind_with_their_truth(tmp_path: Path) -> None:
    summary = generate_demo(tmp_path / "demo", n_items=300, n_queries=20, seed=7)
    items = {
        row["id"]: row
        for row in map(json.loads, (tmp_path / "demo" / "items.jsonl").read_text("utf-8").splitlines())
    }
    planted = truth_rows(tmp_path / "demo" / "truth.jsonl", "duplicate")
    assert len(planted) == summary.n_copies >= 4
    assert {p["transform"] for p in planted} == {"exact", "jpeg", "resize", "crop"}
    assert len(truth_rows(tmp_path / "demo" / "truth.jsonl")) == summary.n_queries  # query rows apart
    for p in planted:
        copy, original = items[p["item_id"]], items[p["original_id"]]
        for key in ("title", "text", "attributes", "language", "category"):
            assert copy[key] == original[key]
        a = (tmp_path / "demo" / original["image"]).read_bytes()
        b = (tmp_path / "demo" / copy["image"]).read_bytes()
        size_a, size_b = Image.open(io.BytesIO(a)).size, Image.open(io.BytesIO(b)).size
        if p["transform"] == "exact":
            assert a == b
        elif p["transform"] == "jpeg":
            assert a != b and size_a == size_b
        elif p["transform"] == "resize":
            assert size_b == tuple(round(s * p["detail"]["scale"]) for s in size_a)
        else:
            assert matching.crop_cuts(size_a, size_b) is not None
    assert plan_copies(300, 7) == plan_copies(300, 7) != plan_copies(300, 8)


# ----------------------------------------------------------------------------- a seeded demo, embedded


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """One embedded demo for the module (embedding is the slow part): 300 items, 20 queries."""
    if not DEMO_CHECKPOINT.is_file():
        pytest.skip("the demo CLIP checkpoint is not built")
    from db import migrate

    root = tmp_path_factory.mktemp("dups")
    mp = pytest.MonkeyPatch()
    mp.setenv("QRELS_DATA_DIR", str(root / "data"))
    url = f"sqlite:///{root / 'app.db'}"
    migrate.upgrade(url)
    db = Database(url)
    generate_demo(root / "demo", n_items=300, n_queries=20, seed=7)
    import_bundle(db, root / "demo", "demo", is_demo=True)
    update_settings(db, "demo", {**DEMO_SETTINGS, "truth_path": str(root / "demo" / "truth.jsonl")})
    embed_dataset(db, "demo")
    report = find_duplicates(db, "demo")
    yield db, root, report, make_users(db)
    mp.undo()


def test_planted_copies_are_grouped_and_nothing_else(demo) -> None:
    db, root, report, _ = demo
    score = duplicate_score(db, "demo")
    assert score.planted_pairs >= 4
    assert (score.precision, score.recall) == (1.0, 1.0), score
    planted = truth_rows(root / "demo" / "truth.jsonl", "duplicate")
    assert report.exact_copies == sum(p["transform"] == "exact" for p in planted)
    assert report.near_copies == len(planted) - report.exact_copies
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ImageSignature)) == report.signatures_computed
        groups = dataset_groups(s, s.scalar(select(Item.dataset_id).limit(1)))
        reps = {g.representative_id: g.size for g in s.scalars(select(DuplicateGroup))}
        near = s.scalars(select(DuplicateMember).where(DuplicateMember.evidence == "near")).all()
    assert {rep: len(m) for rep, m in groups.items()} == reps
    assert all(rep == min(members) for rep, members in groups.items())  # the first imported
    assert all(m.matched_id and m.hamming <= 11 and m.cosine >= 0.95 and m.pixels <= 4.0 for m in near)
    overview = duplicate_overview(db, "demo")
    assert overview.groups == report.groups and overview.items == report.items_in_groups


def test_a_rerun_reuses_the_signatures_and_finds_the_same_groups(demo) -> None:
    db, _, first, _ = demo
    with db.read() as s:
        before = dataset_groups(s, s.scalar(select(Item.dataset_id).limit(1)))
    again = find_duplicates(db, "demo")
    assert (again.signatures_computed, again.signatures_stored_before) == (0, first.signatures_computed)
    with db.read() as s:
        assert dataset_groups(s, s.scalar(select(Item.dataset_id).limit(1))) == before


def _task_with_a_group(db: Database, me):
    """The annotator's first query and a group none of whose members is one of its positives."""
    aid = next_assignment(db, me, "demo")
    task = load_task(db, me, aid)
    positives = {c.item_id for c in task.positives}
    with db.read() as s:
        groups = dataset_groups(s, s.scalar(select(Item.dataset_id).limit(1)))
    members = next(m for m in groups.values() if not positives & set(m))
    return aid, task, members


def test_the_label_of_an_item_goes_to_its_copies_one_judgment_each(demo) -> None:
    db, _, _, people = demo
    me = people["ann1"]
    assign(db, "demo", overlap=1, annotators=["ann1"])
    aid, task, members = _task_with_a_group(db, me)
    source, copies = members[-1], members[:-1]
    assert copies_of(db, "demo", [source], actor=me) == {source: copies}
    labels = {c.item_id: LabelInput("relevant", "original") for c in task.positives}
    labels[source] = LabelInput("relevant", "search", search_text="same product")
    with pytest.raises(ValidationError, match="not judged"):
        submit(
            db,
            me,
            aid,
            QueryWork(labels=labels, verdict="accept", client_token="x", copy_sources=frozenset({1})),
        )
    result = submit(
        db,
        me,
        aid,
        QueryWork(
            labels=labels, verdict="accept", client_token=uuid.uuid4().hex, copy_sources=frozenset({source})
        ),
    )
    with db.read() as s:
        copied = s.scalars(select(Judgment).where(Judgment.provenance == "duplicate")).all()
        source_ext = s.scalar(select(Item.ext_id).where(Item.id == source))
    assert sorted(j.item_id for j in copied) == copies  # one judgment per copy
    for j in copied:
        assert (j.label, j.user_id, j.submission_id) == ("relevant", me.id, result.submission_id)
        assert j.provenance_detail == {"of": source, "of_ext": source_ext}

    # Reopened: the copies are marked as given, not as items found elsewhere; the page sends them back.
    task = load_task(db, me, aid)
    assert task.copy_sources == [source] and not set(copies) & set(task.my_added)
    data = view.task_data(task, version="1")
    assert data["saved"]["copies"] == {str(source): True}
    payload = {
        "labels": data["saved"]["labels"],
        "added": data["saved"]["added"],
        "copies": data["saved"]["copies"],
    }
    work = view.work_from(payload, task, token="t" * 8, time_on_task_ms=0)
    assert work.copy_sources == frozenset({source})
    assert save_draft(db, me, aid, payload, seq=1)  # a draft keeps the mark too
    # Without the copies' label, a resubmit leaves them not relevant (their history keeps the label).
    submit(db, me, aid, QueryWork(labels=labels, verdict="accept", client_token=uuid.uuid4().hex))
    with db.read() as s:
        after = dict(
            s.execute(select(Judgment.item_id, Judgment.label).where(Judgment.item_id.in_(copies))).all()
        )
    assert after == dict.fromkeys(copies, "not_relevant")
    assert load_task(db, me, aid).copy_sources == []


def _changes(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "changes.csv").read_text("utf-8").splitlines()))


def _qrels(out: Path) -> set[tuple[str, str, str]]:
    lines = (out / "qrels.tsv").read_text("utf-8").splitlines()[1:]
    return {tuple(line.split("\t")) for line in lines}


def test_the_export_reports_adds_or_collapses_copies_of_positives(demo, tmp_path: Path) -> None:
    db, _, _, people = demo
    # An annotator adds an item with copies to a query, and leaves its copies unjudged.
    me = people["ann1"]
    assign(db, "demo", overlap=1, annotators=["ann1"])
    aid, task, members = _task_with_a_group(db, me)
    labels = {c.item_id: LabelInput("relevant", "original") for c in task.positives}
    labels[members[0]] = LabelInput("relevant", "search", search_text="same product")
    submit(db, me, aid, QueryWork(labels=labels, verdict="accept", client_token=uuid.uuid4().hex))
    with db.read() as s:
        ds = s.scalar(select(Item.dataset_id).limit(1))
        groups = dataset_groups(s, ds)
        ext = dict(s.execute(select(Item.id, Item.ext_id).where(Item.dataset_id == ds)).all())
    copies_of_ext = {
        ext[m]: {ext[c] for c in members if c != m} for members in groups.values() for m in members
    }

    def run(option: str) -> Path:
        out = tmp_path / option
        options = ExportOptions(formats=("native",), policy=Policy.parse("min=0"), duplicates=option)
        export_dataset(db, "demo", out, options)
        return out

    leave = run("leave")
    positives = {(q, i) for q, i, score in _qrels(leave) if score == "1"}
    expected = {(q, c) for q, i in positives for c in copies_of_ext.get(i, ()) if (q, c) not in positives}
    assert expected, "the seeded demo has a positive with a copy that is not one"
    reported = {(r["query_id"], r["item_id"]) for r in _changes(leave) if r["change"] == "copy_of_positive"}
    assert reported == expected
    manifest = json.loads((leave / "manifest.json").read_text("utf-8"))
    assert manifest["options"]["duplicates"] == "leave"
    assert {(c["query"], c["copy"]) for c in manifest["duplicates"]["copies"]} == expected

    add = run("add")
    added = {
        (r["query_id"], r["item_id"]): r
        for r in _changes(add)
        if r["change"] == "positive_added" and r["basis"] == "duplicate"
    }
    judged_out = {
        (c["query"], c["copy"]) for c in manifest["duplicates"]["copies"] if c["action"] != "reported"
    }
    assert set(added) == expected - judged_out and added
    assert all("copy of" in r["provenance"] for r in added.values())
    assert {(q, i) for q, i, score in _qrels(add) if score == "1"} == positives | set(added)

    collapse = run("collapse")
    items = {json.loads(line)["id"] for line in (collapse / "items.jsonl").read_text("utf-8").splitlines()}
    gone = {ext[m] for rep, members in groups.items() for m in members if m != rep}
    assert not items & gone and {ext[rep] for rep in groups} <= items
    assert not {i for _, i, _ in _qrels(collapse)} & gone
    assert {r["item_id"] for r in _changes(collapse) if r["change"] == "copy_collapsed"} == gone


def test_copies_are_found_and_labelled_on_every_database(db: Database, tmp_path: Path, users) -> None:
    """The smallest demo, not embedded: its copies are matched by hash and layout alone, and a
    label given to copies is stored one judgment per copy (SQLite, and PostgreSQL when set)."""
    generate_demo(tmp_path / "demo", n_items=50, n_queries=5, seed=2)
    import_bundle(db, tmp_path / "demo", "demo", is_demo=True)
    update_settings(db, "demo", {**DEMO_SETTINGS, "truth_path": str(tmp_path / "demo" / "truth.jsonl")})
    report = find_duplicates(db, "demo")
    assert report.groups >= 1
    score = duplicate_score(db, "demo")
    assert (score.precision, score.recall) == (1.0, 1.0)
    me = users["ann1"]
    assign(db, "demo", overlap=1, annotators=["ann1"])
    aid, task, members = _task_with_a_group(db, me)
    labels = {c.item_id: LabelInput("not_relevant", "original") for c in task.positives}
    labels[members[0]] = LabelInput("relevant", "search", search_text="look-alike")
    work = QueryWork(
        labels=labels, verdict="accept", client_token=uuid.uuid4().hex, copy_sources=frozenset({members[0]})
    )
    submit(db, me, aid, work)
    with db.read() as s:
        stored = s.execute(
            select(Judgment.item_id, Judgment.label).where(Judgment.provenance == "duplicate")
        ).all()
    assert sorted(stored) == [(m, "relevant") for m in members[1:]]


def test_the_cli_groups_copies_and_lists_them(sqlite_db: Database, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    generate_demo(tmp_path / "demo", n_items=50, n_queries=5, seed=2)
    import_bundle(sqlite_db, tmp_path / "demo", "demo", is_demo=True)
    update_settings(sqlite_db, "demo", dict(DEMO_SETTINGS))
    result = runner.invoke(app, ["duplicates", "--dataset", "demo", "--list", "5"])
    assert result.exit_code == 0, result.output
    assert "duplicates of demo: 1 groups" in result.output
    planted = truth_rows(tmp_path / "demo" / "truth.jsonl", "duplicate")
    assert all(p["item_id"] in result.output for p in planted)
    unknown = runner.invoke(app, ["duplicates", "--dataset", "nope"])
    assert unknown.exit_code == 1 and "no dataset named 'nope'" in unknown.output
    bad = runner.invoke(
        app, ["export", "--dataset", "demo", "--out", str(tmp_path / "x"), "--duplicates", "merge"]
    )
    assert bad.exit_code == 1 and "leave, add, collapse" in bad.output
