"""First-run setup: the demo project with its users, created only into an empty database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from db.enums import Role
from db.models import Dataset, User
from db.session import Database
from demo.shortcuts import SINGLE_MODALITY_SHARE
from demo.writer import generate_demo
from models.embedder import DEMO_CHECKPOINT, DEMO_MODEL
from services.core.auth import add_user, generate_password
from services.datasets.assignment import assign
from services.datasets.settings import update_settings
from services.ingest.importer import ImportReport, import_bundle

log = logging.getLogger(__name__)

DEMO_DATASET = "demo"
DEMO_USERS = (
    ("admin", Role.ADMIN),
    ("reviewer", Role.REVIEWER),
    ("annotator1", Role.ANNOTATOR),
    ("annotator2", Role.ANNOTATOR),
    ("annotator3", Role.ANNOTATOR),
)


@dataclass(frozen=True)
class Credential:
    name: str
    role: str
    password: str


def database_is_empty(db: Database) -> bool:
    with db.read() as s:
        n_users = s.scalar(select(func.count(User.id))) or 0
        n_datasets = s.scalar(select(func.count(Dataset.id)).where(Dataset.deleted_at.is_(None))) or 0
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
    with_ranking: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    single_modality_share: float = SINGLE_MODALITY_SHARE,
) -> tuple[ImportReport, list[Credential]]:
    """Generate the demo bundle under ``data_dir/demo`` (with planted single-modality queries),
    import it as dataset ``demo``, create its users, rank and triage its candidates with the demo
    CLIP model and assign its queries (overlap 2)."""
    out = Path(data_dir) / "demo"
    generate_demo(
        out,
        n_items=n_items,
        n_queries=n_queries,
        seed=seed,
        overwrite=True,
        single_modality_share=single_modality_share,
    )
    report = import_bundle(db, out, DEMO_DATASET, replace=True, is_demo=True, data_dir=data_dir)
    # The demo ranks with the small CLIP model trained on the generator's images (models/demo_clip).
    # truth.jsonl stays outside the database; the dashboard scores the annotators against it.
    update_settings(
        db,
        DEMO_DATASET,
        {
            "clip_model": DEMO_MODEL,
            "clip_pretrained": "demo",
            "truth_path": str((out / "truth.jsonl").resolve()),
        },
    )
    credentials = create_demo_users(db) if with_users else []
    if with_ranking and not DEMO_CHECKPOINT.is_file():
        log.warning(
            "no demo CLIP checkpoint at %s: the demo has no candidates until it is trained", DEMO_CHECKPOINT
        )
    elif with_ranking:
        # Candidates from the demo CLIP model, and work for the annotators, so the demo is usable at once.
        from services.ranking.embed import embed_dataset
        from services.ranking.rank import rank_dataset
        from services.ranking.search import index_after_ranking
        from services.triage.compute import triage_dataset

        embed_dataset(db, DEMO_DATASET, data_dir=data_dir, progress=progress)
        rank_dataset(db, DEMO_DATASET, k=100, data_dir=data_dir, progress=progress)
        triage_dataset(db, DEMO_DATASET)
        index_after_ranking(db, DEMO_DATASET, data_dir=data_dir)  # pool search ready at once
        if with_users:
            assign(db, DEMO_DATASET, overlap=2)
    return report, credentials
