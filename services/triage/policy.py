"""The export policy's ``shortcuts=drop``: kept queries that one modality alone solves are dropped.

A query's modality shortcut is what triage stored after ranking (:mod:`services.triage.signals`);
a query never triaged is kept (nothing says it has a shortcut).
"""

from __future__ import annotations

import dataclasses

from db.enums import Role, Shortcut
from db.session import Database
from services.cleaning.decisions import DROP_SHORTCUT, QueryOutcome
from services.core.auth import SYSTEM, Actor, allow
from services.triage.views import shortcuts_by_query

#: How a dropped query's detail names its shortcut.
SOLVED_BY = {
    Shortcut.TEXT: "the text alone (BM25 or CLIP text)",
    Shortcut.IMAGE: "the image alone (CLIP text → image)",
    Shortcut.BOTH: "the text alone or the image alone",
}


@allow(Role.ADMIN, Role.REVIEWER)
def drop_single_modality(
    db: Database, dataset_id: int, outcomes: list[QueryOutcome], *, actor: Actor = SYSTEM
) -> list[QueryOutcome]:
    """``outcomes`` with every kept query that one modality alone solves turned into a dropped one."""
    with db.read() as s:
        shortcuts = shortcuts_by_query(s, dataset_id)
    out = []
    for outcome in outcomes:
        shortcut = shortcuts.get(outcome.query_id)
        if outcome.kept and shortcut in SOLVED_BY:
            outcome = dataclasses.replace(
                outcome,
                kept=False,
                reason=DROP_SHORTCUT,
                detail=f"solvable from {SOLVED_BY[Shortcut(shortcut)]}: the policy drops such queries",
            )
        out.append(outcome)
    return out
