"""Export the cleaned test split of a dataset: native bundle, BEIR, TREC, M-BEIR, CSV and Parquet.

One export folder holds every chosen format, laid out so the folder itself re-imports::

    manifest.json        policy, seed, counts, agreement, versions, time, SHA-256 of every file
    changes.csv          each removed query (why), rewrite, removed and added positive (provenance),
                         copy of a positive (reported, added, collapsed)
    items.jsonl queries.jsonl qrels.tsv images/   native bundle (``import OUT`` reads it back)
    beir/corpus.jsonl beir/queries.jsonl beir/qrels/test.tsv
    trec/qrels-test.txt                           qid 0 docno rel, 4 columns
    runs/<ranking>.trec                           each stored ranking: qid Q0 docno rank score tag
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

The pieces: :mod:`~services.export.options` (what to write), :mod:`~services.export.split` (the
queries and pool), :mod:`services.export.writers` (one module per format),
:mod:`~services.export.changes`, :mod:`~services.export.manifest` and
:mod:`~services.export.archive` (placing the folder, zipping it).

Before the folder is put in place, :mod:`~services.export.validate` reads it back: every id a
qrels or run file names must be in its corpus and queries files, or the export fails naming them.

Everything is a function of the database and the options: rows sorted by id, JSON with sorted
keys, ``\\n`` line endings, and the manifest's time taken from the options or else from the
newest decision in the dataset (never the clock), so the same database and options give
byte-identical files.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from db.enums import Role
from db.models import Export
from db.session import Database
from services.cleaning.consensus import compute_consensus
from services.cleaning.sampling import sample_queries
from services.core.auth import SYSTEM, Actor, allow
from services.core.config import load_settings
from services.core.media import MediaStore
from services.export.archive import default_out_dir, place_folder
from services.export.changes import write_changes
from services.export.duplicates import apply_copies, load_groups
from services.export.folder import Folder
from services.export.manifest import MANIFEST, export_counts, manifest_time, write_manifest
from services.export.options import BEIR, CSV, MBEIR, NATIVE, PARQUET, TREC, ExportOptions
from services.export.split import Split, load_pool, load_runs
from services.export.validate import check_export_ids
from services.export.writers.beir import write_beir
from services.export.writers.images import copy_images
from services.export.writers.mbeir import write_mbeir
from services.export.writers.native import write_native
from services.export.writers.tables import write_tables
from services.export.writers.trec import write_trec

log = logging.getLogger(__name__)


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
    files: list[str]  # relative paths, sorted
    counts: dict[str, Any]
    dropped: list[DroppedQuery]  # by consensus, sorted by query id (not the unsampled ones)
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


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
        ValidationError: bad options, ``out`` not empty (without ``overwrite``), ids TREC
            cannot hold, or written files naming ids their corpus or queries file lacks.
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
    query_ids = [q.query_id for q in kept]
    pool = load_pool(db, consensus.dataset_id, query_ids, actor=actor)
    kept, copies = apply_copies(kept, pool, load_groups(db, consensus.dataset_id), options.duplicates)
    query_ids = [q.query_id for q in kept]
    runs = load_runs(db, consensus.dataset_id, query_ids, actor=actor) if TREC in options.formats else {}
    split = Split(kept, consensus, sample, pool, options, runs, copies)

    when, time_source = manifest_time(options, consensus, pool.dataset.created_at)
    if out is None:
        out, overwrite = default_out_dir(dataset, options, when, data_dir), True
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        folder = Folder(tmp)
        warnings: list[str] = []
        formats = options.formats
        if {NATIVE, BEIR, MBEIR} & set(formats):
            warnings += copy_images(folder, split, MediaStore(data_dir))
        if NATIVE in formats:
            warnings += write_native(folder, split)
        if BEIR in formats:
            write_beir(folder, split)
        if TREC in formats:
            write_trec(folder, split)
        if MBEIR in formats:
            write_mbeir(folder, split)
        if CSV in formats or PARQUET in formats:
            write_tables(folder, split, formats)
        write_changes(folder, split)
        check_export_ids(folder, split)
        counts = export_counts(split, len(pool.items))
        manifest = write_manifest(
            folder, split, when=when, time_source=time_source, counts=counts, warnings=warnings
        )
        place_folder(tmp, out, overwrite)
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
    log.info("exported %s to %s: %s", dataset, out, counts)
    return ExportReport(
        dataset=dataset,
        out_dir=out,
        files=sorted([*folder.files, MANIFEST]),
        counts=counts,
        dropped=[
            DroppedQuery(q.ext_id, q.reason or "", q.detail, q.original_text) for q in consensus.dropped
        ],
        manifest=manifest,
        warnings=warnings,
    )
