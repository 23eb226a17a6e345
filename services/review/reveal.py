"""Revealing who is who on a review case: admins only, and every reveal is logged.

Reviewers see a case's annotators as letters (:func:`services.review.disputes.pseudonyms`); an admin
may ask which user each letter stands for. Each answer writes a :class:`db.audit.NameReveal` row
(who revealed which case when) in the same transaction, so no name leaves the database unlogged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from db.audit import NameReveal
from db.enums import Role
from db.models import Dataset, Query, User, utcnow
from db.session import Database
from services.agreement.votes import load_votes
from services.core.auth import Actor, allow
from services.core.errors import ValidationError
from services.core.lookups import live_dataset, query_or_404
from services.review.disputes import pseudonyms


@dataclass(frozen=True)
class Reveal:
    """One logged reveal."""

    dataset: str
    query: str  # the query's ext id
    admin: str  # the admin's name ("cli" for the command line's operator)
    revealed_at: datetime


@allow(Role.ADMIN)
def reveal_names(db: Database, actor: Actor, query_id: int) -> dict[str, str]:
    """Which user each letter of the case stands for ({"A": "ann1", ...}); logs the reveal.

    Raises:
        NotFoundError: no such query.
        ValidationError: nobody finished the query, so it has no annotators to reveal.
    """
    with db.write() as s:
        query = query_or_404(s, query_id)
        votes = load_votes(s, [query_id]).get(query_id)
        if votes is None:
            raise ValidationError(f"query {query.ext_id} has no finished annotation, so no names to reveal")
        letters = pseudonyms(votes)
        names = dict(s.execute(select(User.id, User.name).where(User.id.in_(letters))).all())
        s.add(NameReveal(query_id=query_id, admin_id=actor.id, admin_name=actor.name, revealed_at=utcnow()))
        return {letter: names[uid] for uid, letter in letters.items()}


@allow(Role.ADMIN)
def name_reveals(
    db: Database, actor: Actor, *, dataset: str | None = None, query_id: int | None = None, limit: int = 200
) -> list[Reveal]:
    """The newest logged reveals first: of one query, one dataset, or all."""
    with db.read() as s:
        stmt = (
            select(Dataset.name, Query.ext_id, NameReveal.admin_name, NameReveal.revealed_at)
            .join(Query, Query.id == NameReveal.query_id)
            .join(Dataset, Dataset.id == Query.dataset_id)
            .where(live_dataset())
            .order_by(NameReveal.revealed_at.desc(), NameReveal.id.desc())
            .limit(limit)
        )
        if dataset is not None:
            stmt = stmt.where(Dataset.name == dataset)
        if query_id is not None:
            stmt = stmt.where(NameReveal.query_id == query_id)
        return [Reveal(*row) for row in s.execute(stmt)]
