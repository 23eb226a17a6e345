"""``manifest.json``: what an export is, so that it can be checked and reproduced.

The policy, seed, options, counts, sampling strata, annotator agreement, app version, time and the
SHA-256 of every other file; the copies of positives in the pool and what was done with them
(``duplicates``); for a model policy (Dawid–Skene, MACE) each annotator's estimated competence; and per exported query its item decisions, each with its basis and, under a model
policy, the posterior probability of relevance (``p_relevant``). The time comes from the options, else from the newest decision in
the dataset, else from the dataset's import (never the clock), so the same database and options
give a byte-identical manifest.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from db.enums import Shortcut
from models.hashing import sha256_file
from services.cleaning.decisions import ConsensusResult
from services.cleaning.sampling import Sample
from services.export.folder import Folder
from services.export.options import ExportOptions, format_time
from services.export.split import Split

MANIFEST = "manifest.json"


def app_version() -> str:
    """The version in pyproject.toml (the app is run from its checkout, not installed)."""
    path = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def manifest_time(
    options: ExportOptions, consensus: ConsensusResult, imported_at: datetime | None
) -> tuple[datetime, str]:
    """The manifest's time and where it came from: ``option``, ``newest_decision`` or ``dataset_import``."""
    if options.timestamp is not None:
        return options.timestamp, "option"
    if consensus.newest_decision_at is not None:
        return consensus.newest_decision_at, "newest_decision"
    return imported_at or datetime(1970, 1, 1, tzinfo=UTC), "dataset_import"


def export_counts(split: Split, n_items: int) -> dict[str, Any]:
    base = split.consensus.counts()
    qs = split.queries
    return {
        "items": n_items,
        "queries": {
            "total": base["queries"],
            "kept": base["kept"],
            "dropped": base["dropped"],
            "not_sampled": base["kept"] - len(qs),
            "exported": len(qs),
            "rewritten": sum(q.rewritten for q in qs),
        },
        "qrels": {
            "positives": sum(len(q.positives) for q in qs),
            "positives_added": sum(len(q.added) for q in qs),
            "positives_removed": sum(len(q.removed) for q in qs),
            "judged_non_relevant": sum(len(Split.zero(q)) for q in qs),
        },
        "modality_shortcuts": _shortcut_counts(split),
    }


def _shortcut_counts(split: Split) -> dict[str, Any]:
    """Exported queries per modality shortcut (services.triage), and the rank r it was measured at."""
    found = Counter(split.pool.shortcuts.get(q.query_id, "not_triaged") for q in split.queries)
    names = [s.value for s in Shortcut]
    return {"r": split.pool.shortcut_rank, **{name: found.get(name, 0) for name in [*names, "not_triaged"]}}


def write_manifest(
    folder: Folder,
    split: Split,
    *,
    when: datetime,
    time_source: str,
    counts: dict[str, Any],
    warnings: list[str],
) -> dict[str, Any]:
    """Write ``manifest.json`` (hashing every file written so far) and return its content."""
    options, sample, consensus = split.options, split.sample, split.consensus
    manifest = {
        "app": {"name": "qrels-studio", "version": app_version()},
        "dataset": {"name": consensus.dataset, "source_format": split.pool.dataset.source_format},
        "time": format_time(when),
        "time_source": time_source,
        "options": options.as_dict(),
        "policy": options.policy.as_dict(),
        "seed": options.seed,
        "counts": counts,
        "sampling": _sampling(sample),
        "agreement": consensus.agreement.as_dict(),
        "aggregation": _aggregation(consensus),
        "decisions": _decisions(split),
        "duplicates": split.copies.as_dict() if split.copies is not None else None,
        "warnings": warnings,
        "files": {rel: sha256_file(folder.root / rel) for rel in sorted(folder.files)},
    }
    (folder.root / MANIFEST).write_bytes(
        (json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")
    )
    return manifest


def _sampling(sample: Sample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {
        "size": sample.size,
        "fields": list(sample.fields),
        "strata": [
            {"key": list(s.key), "available": s.available, "selected": s.selected} for s in sample.strata
        ],
    }


def _aggregation(consensus: ConsensusResult) -> dict[str, Any]:
    """The models the policy fitted and each annotator's estimated competence under them."""
    return {
        "models": list(consensus.policy.models),
        "competence": [asdict(c) for c in consensus.competence],
        "gold_queries": sum(q.gold for q in consensus.queries),
    }


def _decisions(split: Split) -> list[dict[str, Any]]:
    """Per exported query, every item decision with its basis and probability of relevance."""
    return [
        {
            "query": q.ext_id,
            "gold": q.gold,
            "p_approved": q.p_approved,
            "items": [
                {
                    "item": d.ext_id,
                    "positive": d.positive,
                    "originally_positive": d.originally_positive,
                    "basis": d.basis,
                    "votes_relevant": d.votes_relevant,
                    "voters": d.voters,
                    "p_relevant": d.p_relevant,
                }
                for d in (q.decisions or q.positives)
            ],
        }
        for q in sorted(split.queries, key=lambda q: q.ext_id)
    ]
