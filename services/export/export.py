"""Export the cleaned test split of a dataset: native bundle, BEIR, TREC, M-BEIR, CSV and Parquet.

One export folder holds every chosen format, laid out so the folder itself re-imports::

    manifest.json        policy, seed, counts, agreement, versions, time, SHA-256 of every file
    changes.csv          each removed query (why), rewrite, removed and added positive (provenance)
    items.jsonl queries.jsonl qrels.tsv images/   native bundle (``import OUT`` reads it back)
    beir/corpus.jsonl beir/queries.jsonl beir/qrels/test.tsv
    trec/qrels-test.txt                           qid 0 docno rel, 4 columns
    mbeir/query/test/mbeir_<name>_task<k>_test.jsonl
    mbeir/cand_pool/local/mbeir_<name>_task<k>_cand_pool.jsonl
    mbeir/qrels/test/mbeir_<name>_task<k>_test_qrels.txt       5 columns, for UniIR
    mbeir/qrels/test/mbeir_<name>_task<k>_test_qrels.trec.txt  4 columns, for trec_eval
    mbeir/id_map.tsv                              M-BEIR qid/did <-> query/item id
    tables/queries.{csv,parquet} tables/qrels.{csv,parquet}

Image paths in ``beir/`` and ``mbeir/`` are relative to those folders (``../images/<sha>.<ext>``).
Qrels hold the positives with 1 and judged non-relevant items with 0: original positives that
consensus rejected, and items imported with score 0 (TREC keeps them, so bpref/infAP still see
them judged). M-BEIR qrels hold positives only, as UniIR writes them; rejected former positives go
to ``neg_cand_list``.

Everything is a function of the database and the options: rows sorted by id, JSON with sorted
keys, ``\\n`` line endings, and the manifest's time taken from the options or else from the
newest decision in the dataset (never the clock), so the same database and options give
byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import tempfile
import tomllib
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from db.enums import ImageStatus, Role
from db.models import Dataset, Export, Item, Query, QueryRef
from db.session import Database
from models.hashing import sha256_bytes, sha256_file
from services.cleaning.consensus import (
    DROP_NOT_SAMPLED,
    STRATIFY_FIELDS,
    ConsensusResult,
    Policy,
    QueryOutcome,
    Sample,
    as_utc,
    compute_consensus,
    sample_queries,
)
from services.core.auth import SYSTEM, Actor, allow
from services.core.config import load_settings
from services.core.errors import NotFoundError, ValidationError
from services.core.media import MediaStore

log = logging.getLogger(__name__)

NATIVE, BEIR, TREC, MBEIR, CSV, PARQUET = "native", "beir", "trec", "mbeir", "csv", "parquet"
FORMATS = (NATIVE, BEIR, TREC, MBEIR, CSV, PARQUET)
IMAGES = "images"
MANIFEST = "manifest.json"
CHANGES = "changes.csv"
# M-BEIR numbers its datasets 0-9 (VisualNews ... MSCOCO); a new one takes the next free id.
DEFAULT_MBEIR_DATASET_ID = 10
# M-BEIR's task ids by (query modality, candidate modality), from UniIR's preprocessing utils.
MBEIR_TASKS = {
    ("text", "image"): 0,
    ("text", "text"): 1,
    ("text", "image,text"): 2,
    ("image", "text"): 3,
    ("image", "image"): 4,
    ("image,text", "text"): 6,
    ("image,text", "image"): 7,
    ("image,text", "image,text"): 8,
}
CHANGE_KINDS = ("query_removed", "query_rewritten", "positive_removed", "positive_added")
CHANGES_HEADER = (
    "query_id",
    "change",
    "item_id",
    "reason",
    "detail",
    "old_text",
    "new_text",
    "source",
    "provenance",
    "provenance_detail",
)
QUERY_COLUMNS = (
    "query_id",
    "text",
    "original_text",
    "rewritten",
    "text_source",
    "category",
    "language",
    "source",
    "group",
    "n_annotators",
    "n_positives",
    "n_added",
    "n_removed",
)
QREL_COLUMNS = ("query_id", "item_id", "score", "decision", "decision_source", "provenance")
_ZIP_STORED = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".parquet"}


def app_version() -> str:
    """The version in pyproject.toml (the app is run from its checkout, not installed)."""
    path = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


# --------------------------------------------------------------------------- options


def _utc_time(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_time(value: datetime) -> str:
    return _utc_time(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how.

    Attributes:
        formats: any of :data:`FORMATS`; written in that order whatever order is given.
        policy: the consensus policy.
        size: a target number of queries for a stratified sample of the kept ones (None: all).
        stratify: query fields to stratify the sample over (``category``, ``language``, ``source``).
        seed: the sample's seed.
        timestamp: the manifest's time; None takes the newest decision in the dataset.
        mbeir_dataset_id: the ``N`` of M-BEIR ids ``"N:n"``.
    """

    formats: tuple[str, ...] = FORMATS
    policy: Policy = field(default_factory=Policy)
    size: int | None = None
    stratify: tuple[str, ...] = ()
    seed: int = 0
    timestamp: datetime | None = None
    mbeir_dataset_id: int = DEFAULT_MBEIR_DATASET_ID

    def __post_init__(self) -> None:
        formats = [f.strip().lower() for f in self.formats if f.strip()]
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown:
            raise ValidationError(f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
        if not formats:
            raise ValidationError(f"choose at least one format: {', '.join(FORMATS)}")
        object.__setattr__(self, "formats", tuple(f for f in FORMATS if f in formats))
        if self.size is not None and (isinstance(self.size, bool) or self.size < 1):
            raise ValidationError(f"the sample size must be at least 1, got {self.size}")
        stratify = tuple(dict.fromkeys(s.strip() for s in self.stratify if s.strip()))
        object.__setattr__(self, "stratify", stratify)
        if stratify and self.size is None:
            raise ValidationError("stratifying needs a sample size; give --size N with --stratify")
        unknown = [f for f in stratify if f not in STRATIFY_FIELDS]
        if unknown:
            raise ValidationError(
                f"cannot stratify over {', '.join(unknown)}; choose from {', '.join(STRATIFY_FIELDS)}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValidationError(f"the seed must be a whole number, got {self.seed!r}")
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", _utc_time(self.timestamp))
        if not isinstance(self.mbeir_dataset_id, int) or self.mbeir_dataset_id < 0:
            raise ValidationError("the M-BEIR dataset id must be a whole number of at least 0")

    def as_dict(self) -> dict[str, Any]:
        return {
            "formats": list(self.formats),
            "policy": self.policy.as_dict(),
            "size": self.size,
            "stratify": list(self.stratify),
            "seed": self.seed,
            "timestamp": format_time(self.timestamp) if self.timestamp else None,
            "mbeir_dataset_id": self.mbeir_dataset_id,
        }

    def digest(self) -> str:
        """A short hash of the options (names an export folder)."""
        return sha256_bytes(_json(self.as_dict()).encode())[:8]


def parse_options(
    *,
    formats: str = ",".join(FORMATS),
    policy: str = "",
    size: int | None = None,
    stratify: str = "",
    seed: int = 0,
    time: str | None = None,
) -> ExportOptions:
    """Options from the strings a command line gives (comma-separated lists, ISO time).

    Raises:
        ValidationError: any value that is not allowed; the message says which and why.
    """
    timestamp = None
    if time:
        try:
            timestamp = datetime.fromisoformat(time.strip().replace("Z", "+00:00"))
        except ValueError as e:
            raise ValidationError(f"time {time!r} is not an ISO 8601 time like 2026-01-31T12:00:00Z") from e
    return ExportOptions(
        formats=tuple(f for f in formats.split(",") if f.strip()),
        policy=Policy.parse(policy),
        size=size,
        stratify=tuple(s for s in stratify.split(",") if s.strip()),
        seed=seed,
        timestamp=timestamp,
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DroppedQuery:
    query_id: str
    reason: str
    detail: str
    text: str


@dataclass(frozen=True)
class ExportReport:
    dataset: str
    out_dir: Path
    export_id: int
    files: list[str]  # relative paths, sorted
    counts: dict[str, Any]
    dropped: list[DroppedQuery]  # by consensus, sorted by query id (not the unsampled ones)
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- writing helpers


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


class _Folder:
    """Writes files under one root and remembers them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: set[str] = set()

    def path(self, rel: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files.add(rel)
        return path

    def text(self, rel: str, content: str) -> None:
        self.path(rel).write_bytes(content.encode("utf-8"))

    def jsonl(self, rel: str, rows: Iterable[dict[str, Any]]) -> None:
        self.text(rel, "".join(_json(r) + "\n" for r in rows))

    def csv(self, rel: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        self.text(rel, _csv_text(header, rows))

    def parquet(self, rel: str, frame: pd.DataFrame) -> None:
        frame.to_parquet(self.path(rel), engine="pyarrow", index=False)

    def copy(self, src: Path, rel: str) -> None:
        if rel not in self.files:
            shutil.copyfile(src, self.path(rel))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "dataset"


# --------------------------------------------------------------------------- loading


@dataclass
class _Pool:
    items: list[Any]  # Item rows as named tuples, sorted by ext id
    refs: dict[int, list[Any]]  # query id -> its refs by position
    item_ext: dict[int, str]
    item_image: dict[str, str | None]  # item ext id -> path relative to the export root
    dataset: Any


def _image_name(sha: str, ext: str | None) -> str:
    return f"{IMAGES}/{sha}.{ext or 'jpg'}"


def _load_pool(db: Database, dataset_id: int, query_ids: Sequence[int]) -> _Pool:
    with db.read() as s:
        ds = s.execute(
            select(Dataset.name, Dataset.source_format, Dataset.created_at).where(Dataset.id == dataset_id)
        ).one()
        items = s.execute(
            select(
                Item.id,
                Item.ext_id,
                Item.title,
                Item.text,
                Item.category,
                Item.language,
                Item.attributes,
                Item.image_ref,
                Item.image_status,
                Item.image_sha256,
                Item.image_ext,
            )
            .where(Item.dataset_id == dataset_id)
            .order_by(Item.ext_id)
        ).all()
        refs: dict[int, list[Any]] = defaultdict(list)
        wanted = set(query_ids)
        for ref in s.execute(
            select(
                QueryRef.query_id,
                QueryRef.position,
                QueryRef.item_id,
                QueryRef.image_ref,
                QueryRef.image_status,
                QueryRef.image_sha256,
                QueryRef.image_ext,
            )
            .join(Query, Query.id == QueryRef.query_id)
            .where(Query.dataset_id == dataset_id)
            .order_by(QueryRef.query_id, QueryRef.position)
        ):
            if ref.query_id in wanted:
                refs[ref.query_id].append(ref)
    item_image = {
        it.ext_id: _image_name(it.image_sha256, it.image_ext)
        if it.image_status == ImageStatus.OK and it.image_sha256
        else None
        for it in items
    }
    return _Pool(items, refs, {it.id: it.ext_id for it in items}, item_image, ds)


# --------------------------------------------------------------------------- the writers


@dataclass
class _Split:
    """The queries to write and their qrels, as the writers need them."""

    queries: list[QueryOutcome]  # sorted by ext id
    consensus: ConsensusResult
    sample: Sample | None
    pool: _Pool
    options: ExportOptions

    def qrels(self) -> list[tuple[str, str, int]]:
        """(query, item, score) sorted: positives 1, judged non-relevant 0."""
        rows = []
        for q in self.queries:
            rows += [(q.ext_id, d.ext_id, 1) for d in q.positives]
            rows += [(q.ext_id, ext, 0) for ext in self.zero(q)]
        return sorted(rows)

    @staticmethod
    def zero(q: QueryOutcome) -> list[str]:
        return sorted({d.ext_id for d in q.removed} | set(q.judged_non_relevant))

    def ref_items(self, q: QueryOutcome) -> list[str]:
        return [self.pool.item_ext[r.item_id] for r in self.pool.refs.get(q.query_id, []) if r.item_id]

    def ref_images(self, q: QueryOutcome) -> list[Any]:
        return [r for r in self.pool.refs.get(q.query_id, []) if r.item_id is None]


def _ref_image_path(ref: Any) -> str | None:
    if ref.image_status == ImageStatus.OK and ref.image_sha256:
        return _image_name(ref.image_sha256, ref.image_ext)
    return None


def _copy_images(folder: _Folder, split: _Split, store: MediaStore) -> list[str]:
    warnings = []
    for it in split.pool.items:
        rel = split.pool.item_image[it.ext_id]
        if rel is None:
            continue
        src = store.original_path(it.image_sha256, it.image_ext or "jpg")
        if not src.is_file():
            raise NotFoundError(
                f"the image of item {it.ext_id!r} is not in the media store ({src}); "
                "check QRELS_DATA_DIR or import the dataset again"
            )
        folder.copy(src, rel)
    for q in split.queries:
        for ref in split.ref_images(q):
            rel = _ref_image_path(ref)
            if rel is None:
                warnings.append(f"query {q.ext_id}: a reference image is missing ({ref.image_ref})")
                continue
            src = store.original_path(ref.image_sha256, ref.image_ext or "jpg")
            if not src.is_file():
                raise NotFoundError(
                    f"a reference image of query {q.ext_id!r} is not in the media store ({src}); "
                    "check QRELS_DATA_DIR or import the dataset again"
                )
            folder.copy(src, rel)
    return warnings


def _write_native(folder: _Folder, split: _Split) -> list[str]:
    warnings = []
    items = []
    for it in split.pool.items:
        image = split.pool.item_image[it.ext_id] or it.image_ref
        if split.pool.item_image[it.ext_id] is None and it.image_status != ImageStatus.REMOTE:
            warnings.append(
                f"item {it.ext_id} has no image file; items.jsonl keeps its reference {it.image_ref!r}, "
                "so the bundle re-imports only once that image is added"
            )
        items.append(
            {
                "id": it.ext_id,
                "title": it.title,
                "text": it.text,
                "image": image,
                "category": it.category,
                "language": it.language,
                "attributes": it.attributes or {},
            }
        )
    folder.jsonl("items.jsonl", items)
    queries = []
    for q in split.queries:
        row: dict[str, Any] = {
            "id": q.ext_id,
            "text": q.text,
            "category": q.category,
            "language": q.language,
            "source": q.source,
            "group": q.group_key,
        }
        if refs := split.ref_items(q):
            row["ref_items"] = refs
        images = [_ref_image_path(r) or r.image_ref for r in split.ref_images(q)]
        if images:
            row["ref_images"] = images
        queries.append({k: v for k, v in row.items() if v is not None})
    folder.jsonl("queries.jsonl", queries)
    folder.text(
        "qrels.tsv",
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{i}\t{s}\n" for q, i, s in split.qrels()),
    )
    if len(warnings) > 5:
        warnings = [*warnings[:5], f"... and {len(warnings) - 5} more items without an image file"]
    return warnings


def _relative(path: str | None) -> str | None:
    """A root-relative image path as seen from a format folder (beir/, mbeir/)."""
    return f"../{path}" if path else None


def _write_beir(folder: _Folder, split: _Split) -> None:
    folder.jsonl(
        "beir/corpus.jsonl",
        (
            {
                "_id": it.ext_id,
                "title": it.title,
                "text": it.text,
                "image": _relative(split.pool.item_image[it.ext_id])
                or (it.image_ref if it.image_status == ImageStatus.REMOTE else None),
                "metadata": {"category": it.category, "language": it.language},
            }
            for it in split.pool.items
        ),
    )
    folder.jsonl(
        "beir/queries.jsonl",
        (
            {
                "_id": q.ext_id,
                "text": q.text,
                "metadata": {
                    "category": q.category,
                    "language": q.language,
                    "ref_items": split.ref_items(q),
                    "ref_images": [_relative(_ref_image_path(r)) for r in split.ref_images(q)],
                },
            }
            for q in split.queries
        ),
    )
    folder.text(
        "beir/qrels/test.tsv",
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{i}\t{s}\n" for q, i, s in split.qrels()),
    )


def _write_trec(folder: _Folder, split: _Split) -> None:
    rows = split.qrels()
    for q, i, _ in rows:
        for kind, value in (("query", q), ("item", i)):
            if any(c.isspace() for c in value):
                raise ValidationError(
                    f"{kind} id {value!r} contains whitespace, which TREC qrels cannot hold; "
                    "export without the trec format (M-BEIR renumbers ids and works)"
                )
    folder.text("trec/qrels-test.txt", "".join(f"{q} 0 {i} {s}\n" for q, i, s in rows))


def _write_mbeir(folder: _Folder, split: _Split) -> None:
    n = split.options.mbeir_dataset_id
    slug = _slug(split.consensus.dataset)
    dids = {it.ext_id: f"{n}:{k}" for k, it in enumerate(split.pool.items, start=1)}
    qids = {q.ext_id: f"{n}:{k}" for k, q in enumerate(split.queries, start=1)}

    candidates = []
    modalities = set()
    for it in split.pool.items:
        image = _relative(split.pool.item_image[it.ext_id])
        txt = "\n".join(part for part in (it.title, it.text) if part) or None
        modality = ",".join(m for m, present in (("image", image), ("text", txt)) if present) or "text"
        modalities.add(modality)
        candidates.append(
            {
                "did": dids[it.ext_id],
                "txt": txt,
                "img_path": image,
                "modality": modality,
                "src_content": _json({"id": it.ext_id}),
            }
        )
    has_image = any("image" in m for m in modalities)
    has_text = any("text" in m for m in modalities)
    pool_modality = "image,text" if has_image and has_text else "image" if has_image else "text"

    by_task: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for q in split.queries:
        refs = split.pool.refs.get(q.query_id, [])
        paths = [
            split.pool.item_image[split.pool.item_ext[r.item_id]] if r.item_id else _ref_image_path(r)
            for r in refs
        ]
        image = next((p for p in paths if p), None)
        modality = "image,text" if image else "text"
        task = MBEIR_TASKS[(modality, pool_modality)]
        source: dict[str, Any] = {"id": q.ext_id}
        if refs:
            source["ref_items"] = split.ref_items(q)
            source["ref_images"] = [_relative(_ref_image_path(r)) for r in split.ref_images(q)]
        by_task[task].append(
            {
                "qid": qids[q.ext_id],
                "query_txt": q.text,
                "query_img_path": _relative(image),
                "query_modality": modality,
                "query_src_content": _json(source),
                "pos_cand_list": [dids[d.ext_id] for d in q.positives],
                "neg_cand_list": [dids[ext] for ext in split.zero(q)],
                "task_id": task,
            }
        )
    for task, queries in sorted(by_task.items()):
        stem = f"mbeir_{slug}_task{task}"
        folder.jsonl(f"mbeir/query/test/{stem}_test.jsonl", queries)
        folder.jsonl(f"mbeir/cand_pool/local/{stem}_cand_pool.jsonl", candidates)
        pairs = [(q["qid"], did) for q in queries for did in q["pos_cand_list"]]
        folder.text(
            f"mbeir/qrels/test/{stem}_test_qrels.txt", "".join(f"{a} 0 {b} 1 {task}\n" for a, b in pairs)
        )
        folder.text(
            f"mbeir/qrels/test/{stem}_test_qrels.trec.txt", "".join(f"{a} 0 {b} 1\n" for a, b in pairs)
        )
    rows = [("kind", "mbeir_id", "id")]
    rows += [("query", qids[q.ext_id], q.ext_id) for q in split.queries]
    rows += [("candidate", dids[it.ext_id], it.ext_id) for it in split.pool.items]
    folder.text("mbeir/id_map.tsv", "".join("\t".join(r) + "\n" for r in rows))


def _provenance(decision: Any) -> str:
    return "; ".join(a.describe() for a in decision.additions)


def _provenance_json(decision: Any) -> str:
    return _json([{"by": a.by, "provenance": a.provenance, "detail": a.detail} for a in decision.additions])


def _tables(split: _Split) -> tuple[pd.DataFrame, pd.DataFrame]:
    queries = pd.DataFrame(
        [
            (
                q.ext_id,
                q.text,
                q.original_text,
                q.rewritten,
                q.text_source,
                q.category,
                q.language,
                q.source,
                q.group_key,
                q.n_annotators,
                len(q.positives),
                len(q.added),
                len(q.removed),
            )
            for q in split.queries
        ],
        columns=list(QUERY_COLUMNS),
    )
    rows = []
    for q in split.queries:
        for d in q.positives:
            rows.append(
                (q.ext_id, d.ext_id, 1, "added" if d.added else "kept", d.source, _provenance(d) or None)
            )
        for d in q.removed:
            rows.append((q.ext_id, d.ext_id, 0, "removed", d.source, None))
        for ext in q.judged_non_relevant:
            rows.append((q.ext_id, ext, 0, "judged_non_relevant", "original", None))
    rows.sort(key=lambda r: (r[0], r[1]))
    qrels = pd.DataFrame(rows, columns=list(QREL_COLUMNS))
    return queries, qrels


def _write_tables(folder: _Folder, split: _Split, formats: Sequence[str]) -> None:
    queries, qrels = _tables(split)
    if CSV in formats:
        folder.text("tables/queries.csv", queries.to_csv(index=False, lineterminator="\n"))
        folder.text("tables/qrels.csv", qrels.to_csv(index=False, lineterminator="\n"))
    if PARQUET in formats:
        folder.parquet("tables/queries.parquet", queries)
        folder.parquet("tables/qrels.parquet", qrels)


def _changes(split: _Split) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    order = {kind: n for n, kind in enumerate(CHANGE_KINDS)}
    exported = {q.ext_id for q in split.queries}
    for q in split.consensus.queries:
        if not q.kept:
            rows.append((q.ext_id, "query_removed", "", q.reason, q.detail, q.original_text, "", "", "", ""))
            continue
        if q.ext_id not in exported:
            size = split.sample.size if split.sample else 0
            rows.append(
                (
                    q.ext_id,
                    "query_removed",
                    "",
                    DROP_NOT_SAMPLED,
                    f"not drawn in the stratified sample of {size}",
                    q.original_text,
                    "",
                    "",
                    "",
                    "",
                )
            )
            continue
        if q.rewritten:
            rows.append(
                (q.ext_id, "query_rewritten", "", "", "", q.original_text, q.text, q.text_source, "", "")
            )
        for d in q.removed:
            votes = f"{d.votes_relevant} of {d.voters} annotators said relevant" if d.voters else ""
            rows.append((q.ext_id, "positive_removed", d.ext_id, "", votes, "", "", d.source, "", ""))
        for d in q.added:
            votes = f"{d.votes_relevant} of {d.voters} annotators said relevant" if d.voters else ""
            rows.append(
                (
                    q.ext_id,
                    "positive_added",
                    d.ext_id,
                    "",
                    votes,
                    "",
                    "",
                    d.source,
                    _provenance(d),
                    _provenance_json(d),
                )
            )
    rows.sort(key=lambda r: (r[0], order[r[1]], r[2]))
    return rows


# --------------------------------------------------------------------------- the export


def _counts(split: _Split, n_items: int) -> dict[str, Any]:
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
            "judged_non_relevant": sum(len(_Split.zero(q)) for q in qs),
        },
    }


def _place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished export into ``out``, replacing an earlier export only when asked."""
    if out.exists():
        if not out.is_dir():
            raise ValidationError(f"{out} is a file; give a folder for the export")
        if any(out.iterdir()):
            if not overwrite:
                raise ValidationError(f"{out} is not empty; choose a new folder or pass --overwrite")
            if not (out / MANIFEST).is_file():
                raise ValidationError(
                    f"{out} is not empty and holds no {MANIFEST}, so it is not an earlier export; "
                    "choose a new or empty folder"
                )
            shutil.rmtree(out)
        else:
            out.rmdir()
    os.replace(tmp, out)


def default_out_dir(
    dataset: str, options: ExportOptions, when: datetime, data_dir: Path | None = None
) -> Path:
    """``<data_dir>/exports/<dataset>/<time>-<options hash>``: the same state and options, one folder."""
    root = Path(data_dir or load_settings().data_dir) / "exports" / _slug(dataset)
    return root / f"{_utc_time(when).strftime('%Y%m%dT%H%M%SZ')}-{options.digest()}"


@allow(Role.ADMIN)
def export_dataset(
    db: Database,
    dataset: str,
    out: Path | None = None,
    options: ExportOptions | None = None,
    *,
    overwrite: bool = False,
    actor: Actor = SYSTEM,
    data_dir: Path | None = None,
) -> ExportReport:
    """Apply the consensus policy, sample, and write every chosen format into ``out``.

    The folder is built beside ``out`` and moved into place when complete, so a failed export
    leaves nothing half-written. ``out`` None writes to :func:`default_out_dir` (replacing an
    export there, which holds the same files). The export is recorded in the ``exports`` table.

    Raises:
        NotFoundError: no such dataset, or an image missing from the media store.
        ValidationError: bad options, ``out`` not empty (without ``overwrite``), or ids TREC
            cannot hold.
        PermissionDenied: ``actor`` is not an admin.
    """
    options = options or ExportOptions()
    data_dir = Path(data_dir or load_settings().data_dir)
    consensus = compute_consensus(db, dataset, options.policy, actor=actor)
    kept = consensus.kept
    sample = None
    if options.size is not None:
        sample = sample_queries(kept, options.size, options.stratify, options.seed)
        chosen = set(sample.selected)
        kept = [q for q in kept if q.ext_id in chosen]
    pool = _load_pool(db, consensus.dataset_id, [q.query_id for q in kept])
    split = _Split(kept, consensus, sample, pool, options)

    if options.timestamp is not None:
        when, time_source = options.timestamp, "option"
    elif consensus.newest_decision_at is not None:
        when, time_source = consensus.newest_decision_at, "newest_decision"
    else:
        when, time_source = (
            as_utc(pool.dataset.created_at) or datetime(1970, 1, 1, tzinfo=UTC),
            "dataset_import",
        )
    if out is None:
        out, overwrite = default_out_dir(dataset, options, when, data_dir), True
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        folder = _Folder(tmp)
        warnings: list[str] = []
        formats = options.formats
        if {NATIVE, BEIR, MBEIR} & set(formats):
            warnings += _copy_images(folder, split, MediaStore(data_dir))
        if NATIVE in formats:
            warnings += _write_native(folder, split)
        if BEIR in formats:
            _write_beir(folder, split)
        if TREC in formats:
            _write_trec(folder, split)
        if MBEIR in formats:
            _write_mbeir(folder, split)
        if CSV in formats or PARQUET in formats:
            _write_tables(folder, split, formats)
        folder.csv(CHANGES, CHANGES_HEADER, _changes(split))

        counts = _counts(split, len(pool.items))
        manifest = {
            "app": {"name": "qrels-studio", "version": app_version()},
            "dataset": {"name": dataset, "source_format": pool.dataset.source_format},
            "time": format_time(when),
            "time_source": time_source,
            "options": options.as_dict(),
            "policy": options.policy.as_dict(),
            "seed": options.seed,
            "counts": counts,
            "sampling": None
            if sample is None
            else {
                "size": sample.size,
                "fields": list(sample.fields),
                "strata": [
                    {"key": list(s.key), "available": s.available, "selected": s.selected}
                    for s in sample.strata
                ],
            },
            "agreement": consensus.agreement.as_dict(),
            "warnings": warnings,
            "files": {rel: sha256_file(tmp / rel) for rel in sorted(folder.files)},
        }
        (tmp / MANIFEST).write_bytes(
            (json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")
        )
        _place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    with db.write() as s:
        record = Export(
            dataset_id=consensus.dataset_id,
            created_by_id=actor.id,
            options=options.as_dict(),
            manifest=manifest,
            out_path=str(out),
        )
        s.add(record)
        s.flush()
        export_id = record.id
    log.info("exported %s to %s: %s", dataset, out, counts)
    return ExportReport(
        dataset=dataset,
        out_dir=out,
        export_id=export_id,
        files=sorted([*folder.files, MANIFEST]),
        counts=counts,
        dropped=[
            DroppedQuery(q.ext_id, q.reason or "", q.detail, q.original_text) for q in consensus.dropped
        ],
        manifest=manifest,
        warnings=warnings,
    )


def zip_export(out_dir: Path) -> bytes:
    """The export folder as a zip, byte-identical for identical folders (fixed times, sorted)."""
    out_dir = Path(out_dir)
    if not (out_dir / MANIFEST).is_file():
        raise NotFoundError(f"{out_dir} holds no {MANIFEST}; it is not an export folder")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(out_dir).as_posix()
            info = zipfile.ZipInfo(f"{out_dir.name}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            stored = path.suffix.lower() in _ZIP_STORED
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
