"""Roles are enforced in the services themselves: every admin or reviewer service, called as an
annotator, is refused before it reads or writes anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.session import Database
from services import (
    agreement,
    annotation,
    assignment,
    auth,
    consensus,
    dashboard,
    datasets,
    evaluation,
    export,
    ranking,
    review,
)
from services.auth import Actor
from services.errors import PermissionDenied
from services.importer import import_bundle
from tests.bundles import make_bundle
from tests.conftest import PASSWORD


def admin_and_reviewer_services(db: Database, tmp_path: Path):
    bundle = tmp_path / "bundle"
    return [
        ("auth.add_user", lambda a: auth.add_user(db, "mallory", "admin", PASSWORD, actor=a)),
        ("auth.list_users", lambda a: auth.list_users(db, actor=a)),
        ("auth.set_active", lambda a: auth.set_active(db, "admin", False, actor=a)),
        (
            "auth.set_password of another user",
            lambda a: auth.set_password(db, "admin", "owned by me!", actor=a),
        ),
        ("importer.import_bundle", lambda a: import_bundle(db, bundle, "evil", actor=a)),
        ("datasets.set_guidelines", lambda a: datasets.set_guidelines(db, "shop", "x", actor=a)),
        ("datasets.update_settings", lambda a: datasets.update_settings(db, "shop", {"k": 1}, actor=a)),
        ("datasets.delete_dataset", lambda a: datasets.delete_dataset(db, "shop", actor=a)),
        ("assignment.assign", lambda a: assignment.assign(db, "shop", actor=a)),
        ("assignment.queue_sizes", lambda a: assignment.queue_sizes(db, actor=a)),
        ("ranking.embed_dataset", lambda a: ranking.embed_dataset(db, "shop", actor=a)),
        ("ranking.rank_dataset", lambda a: ranking.rank_dataset(db, "shop", actor=a)),
        ("ranking.start_ranking_job", lambda a: ranking.start_ranking_job(db, "shop", actor=a)),
        ("review.review_queue", lambda a: review.review_queue(db, a, "shop")),
        ("review.load_case", lambda a: review.load_case(db, a, 1)),
        ("review.adjudicate", lambda a: review.adjudicate(db, a, 1, items={}, verdict="accept")),
        ("review.review_progress", lambda a: review.review_progress(db, a, "shop")),
        ("agreement.agreement_report", lambda a: agreement.agreement_report(db, a, "shop")),
        ("agreement.agreement_over_time", lambda a: agreement.agreement_over_time(db, a, "shop")),
        ("dashboard.dashboard", lambda a: dashboard.dashboard(db, a, "shop")),
        ("dashboard.dataset_overview", lambda a: dashboard.dataset_overview(db, a)),
        ("consensus.compute_consensus", lambda a: consensus.compute_consensus(db, "shop", actor=a)),
        ("export.export_dataset", lambda a: export.export_dataset(db, "shop", tmp_path / "out", actor=a)),
        ("evaluation.evaluate_dataset", lambda a: evaluation.evaluate_dataset(db, "shop", actor=a)),
    ]


def test_every_admin_and_reviewer_service_refuses_an_annotator(
    db: Database, tmp_path: Path, data_dir: Path, users: dict[str, Actor]
) -> None:
    make_bundle(tmp_path / "bundle")
    import_bundle(db, tmp_path / "bundle", "shop")
    before = [u.name for u in auth.list_users(db)]
    refused = []
    for name, call in admin_and_reviewer_services(db, tmp_path):
        with pytest.raises(PermissionDenied):
            call(users["ann1"])
        refused.append(name)
    assert len(refused) >= 24
    assert [u.name for u in auth.list_users(db)] == before  # nothing was written
    assert [d.name for d in datasets.list_datasets(db)] == ["shop"]
    assert not (tmp_path / "out").exists()


def test_annotator_services_refuse_other_annotators_work(
    db: Database, tmp_path: Path, data_dir: Path, users
) -> None:
    import_bundle(db, make_bundle(tmp_path / "bundle"), "shop")
    assignment.assign(db, "shop", overlap=1, annotators=["ann1"])
    mine = annotation.next_assignment(db, users["ann1"], "shop")
    for call in (
        lambda: annotation.load_task(db, users["ann2"], mine),
        lambda: annotation.skip(db, users["ann2"], mine),
    ):
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(PermissionDenied):  # reviewers judge disputes, not queues
        annotation.my_datasets(db, users["reviewer"])
