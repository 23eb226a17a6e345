"""Roles are enforced in the services themselves: every admin or reviewer service, called as an
annotator, is refused before it reads or writes anything.

Every public service function that takes the database declares who may call it (``@allow`` or
``@public``); the tests below find them by walking ``services/``, so a new service without a role
check fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from db.enums import Role
from db.session import Database
from services.agreement import dashboard
from services.agreement import report as agreement
from services.annotation.queue import my_datasets, next_assignment, skip
from services.annotation.task import load_task
from services.cleaning import consensus, evaluation
from services.core import auth
from services.core.auth import ROLES_ATTR, Actor
from services.core.errors import PermissionDenied
from services.datasets import assignment
from services.datasets import catalog as datasets
from services.datasets.settings import update_settings
from services.export import export
from services.ingest.importer import import_bundle
from services.ranking import embed, jobs, rank
from services.review import disputes as review
from services.review.adjudication import adjudicate
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
        ("datasets.update_settings", lambda a: update_settings(db, "shop", {"k": 1}, actor=a)),
        ("datasets.delete_dataset", lambda a: datasets.delete_dataset(db, "shop", actor=a)),
        ("assignment.assign", lambda a: assignment.assign(db, "shop", actor=a)),
        ("assignment.queue_sizes", lambda a: assignment.queue_sizes(db, actor=a)),
        ("ranking.embed_dataset", lambda a: embed.embed_dataset(db, "shop", actor=a)),
        ("ranking.rank_dataset", lambda a: rank.rank_dataset(db, "shop", actor=a)),
        ("ranking.start_ranking_job", lambda a: jobs.start_ranking_job(db, "shop", actor=a)),
        ("review.review_queue", lambda a: review.review_queue(db, a, "shop")),
        ("review.load_case", lambda a: review.load_case(db, a, 1)),
        ("review.adjudicate", lambda a: adjudicate(db, a, 1, items={}, verdict="accept")),
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
    mine = next_assignment(db, users["ann1"], "shop")
    for call in (
        lambda: load_task(db, users["ann2"], mine),
        lambda: skip(db, users["ann2"], mine),
    ):
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(PermissionDenied):  # reviewers judge disputes, not queues
        my_datasets(db, users["reviewer"])


def service_functions() -> Iterator[tuple[str, Callable]]:
    """Every public function defined in services/** that takes the database (``db``)."""
    import services

    for info in pkgutil.walk_packages(services.__path__, "services."):
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(fn):
                continue
            if inspect.unwrap(fn).__module__ != module.__name__:
                continue  # imported from elsewhere: checked where it is defined
            if "db" in inspect.signature(fn).parameters:
                yield f"{info.name}.{name}", fn


def test_every_service_says_who_may_call_it() -> None:
    found = dict(service_functions())
    assert len(found) >= 60  # the walk reaches every package
    unmarked = sorted(name for name, fn in found.items() if not hasattr(fn, ROLES_ATTR))
    assert not unmarked, f"services with no @allow or @public: {unmarked}"
    for name, fn in found.items():
        if getattr(fn, ROLES_ATTR) is None:
            assert fn.public_reason.strip(), f"{name} is @public without saying why"


def test_every_service_refuses_the_roles_it_does_not_allow_before_running() -> None:
    """Called with placeholder arguments: the check must come before the body touches any."""
    actors = {role: Actor(99, f"someone-{role}", role) for role in Role if role != Role.ADMIN}
    checked = 0
    for _name, fn in service_functions():
        allowed = getattr(fn, ROLES_ATTR)
        if allowed is None:
            continue
        params = inspect.signature(fn).parameters
        for role, actor in actors.items():
            if role in allowed:
                continue
            args = {
                p: (actor if p == "actor" else None)
                for p, spec in params.items()
                if p == "actor" or spec.default is inspect.Parameter.empty
            }
            with pytest.raises(PermissionDenied):
                fn(**args)
            checked += 1
    assert checked >= 50, checked
