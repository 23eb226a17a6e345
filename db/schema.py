"""Every table of the schema on one MetaData: what Alembic and the schema tests compare against.

Importing the model modules registers their tables on ``Base.metadata``; code that needs the
whole schema (migrations/env.py, tests) takes ``metadata`` from here, never from one module.
"""

from __future__ import annotations

from db import accounts, audit, duplicates, gold, models, studies, triage

metadata = models.Base.metadata
assert studies.Study.__table__.metadata is metadata  # the study tables are on it
assert accounts.SessionToken.__table__.metadata is metadata  # and the session tables
assert audit.NameReveal.__table__.metadata is metadata  # and the audit log
assert gold.GoldQuery.__table__.metadata is metadata  # and the gold tables
assert triage.QueryTriage.__table__.metadata is metadata  # and the triage of queries
assert duplicates.DuplicateGroup.__table__.metadata is metadata  # and the duplicate groups
