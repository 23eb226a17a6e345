"""First-run setup: the demo project with its users, created only into an empty database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from db.models import ROLE_ADMIN, ROLE_ANNOTATOR, ROLE_REVIEWER, Dataset, User
from db.session import Database
from services.auth import add_user, generate_password
from services.demo import generate_demo
from services.importer import ImportReport, import_bundle

log = logging.getLogger(__name__)

DEMO_DATASET = "demo"
DEMO_USERS = (
    ("admin", ROLE_ADMIN),
    ("reviewer", ROLE_REVIEWER),
    ("annotator1", ROLE_ANNOTATOR),
    ("annotator2", ROLE_ANNOTATOR),
    ("annotator3", ROLE_ANNOTATOR),
)


@dataclass(frozen=True)
class Credential:
    name: str
    role: str
    password: str


def database_is_empty(db: Database) -> bool:
    with db.read() as s:
        n_users = s.scalar(select(func.count(User.id))) or 0
        n_datasets = s.scalar(select(func.count(Dataset.id))) or 0
    return n_users == 0 and n_datasets == 0


def create_demo_users(db: Database) -> list[Credential]:
    """One admin, one reviewer and three annotators, each with a fresh random password."""
    credentials = []
    for name, role in DEMO_USERS:
        password = generate_password()
        add_user(db, name, role, password)
        credentials.append(Credential(name, role, password))
    return credentials


def load_demo(
    db: Database,
    data_dir: Path,
    *,
    n_items: int = 2000,
    n_queries: int = 200,
    seed: int = 0,
    with_users: bool = True,
) -> tuple[ImportReport, list[Credential]]:
    """Generate the demo bundle under ``data_dir/demo`` and import it as dataset ``demo``."""
    out = Path(data_dir) / "demo"
    generate_demo(out, n_items=n_items, n_queries=n_queries, seed=seed, overwrite=True)
    report = import_bundle(db, out, DEMO_DATASET, replace=True, is_demo=True, data_dir=data_dir)
    credentials = create_demo_users(db) if with_users else []
    return report, credentials
