"""Duplicate groups of a dataset's pool: computed after embedding, stored in one transaction.

Items whose images are copies of one another are grouped:

- exact copies share the media store's content hash (the same bytes);
- near copies (re-encoded, resized, slightly cropped) are pairs of images whose perceptual hashes
  are at most :data:`MAX_HAMMING` bits apart (found without comparing every pair, see
  :mod:`services.duplicates.matching`), whose CLIP image vectors have a cosine of at least
  :data:`MIN_COSINE`, and whose 16×16 colour layouts differ by at most :data:`MAX_PIXELS` grey
  levels on average — or, when one image is up to 8 % narrower or shorter than the other, by at
  most :data:`MAX_CROPPED` on average and :data:`MAX_CROPPED_MEDIAN` at the median after the
  crop that best explains it (layouts within :data:`CROP_GATE`): a copy differs at its edges,
  another photo that happens to align everywhere a little.

The CLIP cosine alone does not tell an item from another one of the same kind (a model trained
to see colour and pattern finds two red striped dresses alike whatever their photos), and the
hash alone does not either on catalogues of plain backdrops; the layout check does, and the two
gates in front of it keep its work small. Signatures are computed once per image (table
``image_signatures``). A group bigger than :data:`MAX_GROUP` (one placeholder image under many
items) is reported, not stored. Rerunning replaces the dataset's groups.
"""

from __future__ import annotations

import functools
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select

from db.duplicates import DuplicateGroup, DuplicateMember, ImageSignature
from db.enums import DuplicateEvidence, ImageStatus, Role
from db.models import Item, utcnow
from db.session import Database
from models.embedder import ClipEmbedder
from services.core.auth import SYSTEM, Actor, allow
from services.core.config import load_settings
from services.core.lookups import dataset_or_404
from services.core.media import MediaStore, make_thumbnail
from services.datasets.settings import DatasetSettings
from services.duplicates import matching
from services.duplicates.signatures import (
    SIGNATURE_VERSION,
    Signature,
    detail_of,
    layout_from_bytes,
    signature_of,
)
from services.ranking.models import embedder_for, store_for
from services.ranking.rankers import Progress

log = logging.getLogger(__name__)

MAX_HAMMING = 11  # perceptual-hash bits two copies may differ in
MIN_COSINE = 0.95  # CLIP image cosine two copies have at least
MAX_PIXELS = 2.6  # mean colour difference (0-255) of two copies' layouts
MAX_CROPPED = 4.0  # the same for a slightly cropped copy, compared with the part of the original it shows
MAX_CROPPED_MEDIAN = 1.0  # ... whose median difference is near 0 (its differences are at its edges)
CROP_GATE = 12.0  # layouts further apart than this are not searched for a crop
MAX_GROUP = 50  # a bigger group is one image shared by unrelated items (a placeholder): not stored
SIGNATURE_BATCH = 2_000  # signatures stored per transaction while they are computed
_IN_CHUNK = 5_000  # values per SQL IN list


@dataclass(frozen=True)
class DuplicateReport:
    """What :func:`find_duplicates` found and stored."""

    dataset: str
    groups: int
    items_in_groups: int
    exact_copies: int  # members that joined by the same bytes
    near_copies: int  # members that joined as near copies
    candidate_pairs: int  # image pairs with close hashes (before the layout and CLIP checks)
    signatures_computed: int
    signatures_stored_before: int
    skipped_groups: list[int] = field(default_factory=list)  # sizes of groups over MAX_GROUP
    unreadable: list[str] = field(default_factory=list)  # item ext ids whose thumbnail failed


@dataclass(frozen=True)
class _Edge:
    evidence: DuplicateEvidence
    hamming: int | None = None
    cosine: float | None = None
    pixels: float | None = None


@allow(Role.ADMIN)
def find_duplicates(
    db: Database,
    dataset: str,
    *,
    embedder: ClipEmbedder | None = None,
    data_dir: Path | None = None,
    progress: Progress | None = None,
    actor: Actor = SYSTEM,
) -> DuplicateReport:
    """Group the dataset's items whose images are copies, and replace its stored groups.

    Needs the pool's image vectors (:func:`services.ranking.embed.embed_dataset`); images
    without one are matched by hash and layout alone.
    """
    data_dir = Path(data_dir or load_settings().data_dir)
    with db.read() as s:
        ds = dataset_or_404(s, dataset)
        dataset_id, settings = ds.id, DatasetSettings.from_stored(ds.settings)
        rows = s.execute(
            select(Item.id, Item.ext_id, Item.image_sha256, Item.image_ext, Item.width, Item.height)
            .where(Item.dataset_id == dataset_id, Item.image_status == ImageStatus.OK)
            .order_by(Item.id)
        ).all()
    media = MediaStore(data_dir)
    shas = list(dict.fromkeys(r.image_sha256 for r in rows if r.image_sha256))
    exts = {r.image_sha256: r.image_ext for r in rows}
    sizes = {r.image_sha256: (r.width or 0, r.height or 0) for r in rows}
    signatures, computed, before, bad = _signatures(db, media, shas, exts, progress)
    unreadable = sorted(r.ext_id for r in rows if r.image_sha256 in bad)
    rows = [r for r in rows if r.image_sha256 in signatures]

    # near copies among distinct images
    shas = [sha for sha in shas if sha in signatures]
    hashes = np.array([signatures[sha].phash for sha in shas], dtype=np.uint64)
    tally = [0]
    accept = None
    if shas:
        layouts = np.stack([signatures[sha].layout for sha in shas])
        accept = matching.layout_prefilter(
            layouts, np.array([sizes[sha] for sha in shas]), MAX_PIXELS, CROP_GATE
        )
    pairs = matching.hash_pairs(hashes, MAX_HAMMING, accept=accept, tally=tally)
    near = _confirm(
        pairs, shas, [sizes[sha] for sha in shas], hashes, signatures, media, settings, embedder, data_dir
    )
    if progress is not None:
        progress("duplicates", 1, 1)

    # items: exact copies share an image; near copies join through their images' first items
    index = {r.id: n for n, r in enumerate(rows)}
    first_item: dict[str, int] = {}
    edges: dict[tuple[int, int], _Edge] = {}
    for r in rows:
        if r.image_sha256 in first_item:
            edges[(index[first_item[r.image_sha256]], index[r.id])] = _Edge(DuplicateEvidence.EXACT)
        else:
            first_item[r.image_sha256] = r.id
    for (a, b), edge in near.items():
        edges[(index[first_item[a]], index[first_item[b]])] = edge
    groups = matching.components(len(rows), edges)
    kept = [g for g in groups if len(g) <= MAX_GROUP]
    skipped = sorted(len(g) for g in groups if len(g) > MAX_GROUP)
    if skipped:
        log.warning(
            "%s: %d groups bigger than %d not stored (placeholder images?)", dataset, len(skipped), MAX_GROUP
        )
    exact, near_members = _store(db, dataset_id, [r.id for r in rows], kept, edges)
    report = DuplicateReport(
        dataset=dataset,
        groups=len(kept),
        items_in_groups=sum(len(g) for g in kept),
        exact_copies=exact,
        near_copies=near_members,
        candidate_pairs=tally[0],
        signatures_computed=computed,
        signatures_stored_before=before,
        skipped_groups=skipped,
        unreadable=unreadable,
    )
    log.info("duplicates of %s: %s", dataset, report)
    return report


def _signatures(
    db: Database,
    media: MediaStore,
    shas: list[str],
    exts: dict[str, str | None],
    progress: Progress | None,
) -> tuple[dict[str, Signature], int, int, set[str]]:
    """Stored signatures, and the missing ones computed from thumbnails (and stored)."""
    found: dict[str, Signature] = {}
    with db.read() as s:
        for start in range(0, len(shas), _IN_CHUNK):
            for sig in s.scalars(
                select(ImageSignature).where(
                    ImageSignature.sha256.in_(shas[start : start + _IN_CHUNK]),
                    ImageSignature.version == SIGNATURE_VERSION,
                )
            ):
                found[sig.sha256] = Signature(int(sig.phash, 16), layout_from_bytes(sig.layout))
    before = len(found)
    todo = [sha for sha in shas if sha not in found]
    bad: set[str] = set()

    def one(sha: str) -> Signature | None:
        try:
            return signature_of(_thumbnail(media, sha, exts.get(sha)))
        except (OSError, ValueError) as e:
            log.warning("image %s: no signature: %s", sha, e)
            return None

    # decoding and resizing release the GIL: threads keep every core busy
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, len(todo), SIGNATURE_BATCH):
            chunk = todo[start : start + SIGNATURE_BATCH]
            batch = {}
            for sha, sig in zip(chunk, pool.map(one, chunk), strict=True):
                if sig is None:
                    bad.add(sha)
                else:
                    found[sha] = batch[sha] = sig
            _put_signatures(db, batch)
            if progress is not None:
                progress("signatures", start + len(chunk), len(todo))
    return found, len(todo) - len(bad), before, bad


def _thumbnail(media: MediaStore, sha: str, ext: str | None) -> Path | bytes:
    thumb = media.thumb_path(sha)
    if thumb.is_file():
        return thumb
    return make_thumbnail(media.original_path(sha, ext or "jpg").read_bytes())


def _put_signatures(db: Database, batch: dict[str, Signature]) -> None:
    if not batch:
        return
    with db.write() as s:
        old = set(s.scalars(select(ImageSignature.sha256).where(ImageSignature.sha256.in_(list(batch)))))
        s.execute(delete(ImageSignature).where(ImageSignature.sha256.in_(old)))
        s.add_all(
            ImageSignature(
                sha256=sha, version=SIGNATURE_VERSION, phash=sig.phash_hex(), layout=sig.layout_bytes()
            )
            for sha, sig in batch.items()
        )


def _confirm(
    pairs: np.ndarray,
    shas: list[str],
    sizes: list[tuple[int, int]],
    hashes: np.ndarray,
    signatures: dict[str, Signature],
    media: MediaStore,
    settings: DatasetSettings,
    embedder: ClipEmbedder | None,
    data_dir: Path,
) -> dict[tuple[str, str], _Edge]:
    """The candidate pairs that pass the CLIP and layout checks, with their evidence."""
    if not len(pairs):
        return {}
    cos = np.full(len(pairs), np.nan, dtype=np.float32)
    store = store_for(embedder or embedder_for(settings), data_dir)
    involved = [int(n) for n in np.unique(pairs)]  # only these vectors are read
    absent = set(store.missing("image", [shas[n] for n in involved]))
    with_vector = [n for n in involved if shas[n] not in absent]
    if with_vector:
        row_of = np.full(len(shas), -1, dtype=np.int64)
        row_of[with_vector] = np.arange(len(with_vector))
        mapped = row_of[pairs]
        both = (mapped >= 0).all(axis=1)
        vectors = store.get("image", [shas[n] for n in with_vector])
        cos[both] = matching.cosines(vectors, mapped[both])
    keep = np.isnan(cos) | (cos >= MIN_COSINE)
    pairs, cos = pairs[keep], cos[keep]
    layouts = np.stack([signatures[sha].layout for sha in shas])
    pixels = matching.layout_distances(layouts, pairs)
    # a slightly cropped copy: the part of the original it shows, when its size says it is one
    detail = functools.lru_cache(maxsize=2048)(lambda n: detail_of(media.thumb_path(shas[n])))
    confirmed = pixels <= MAX_PIXELS
    for n in np.flatnonzero(~confirmed & (pixels <= CROP_GATE)):
        a, b = (int(x) for x in pairs[n])
        for big, small in ((a, b), (b, a)):
            cuts = matching.crop_cuts(sizes[big], sizes[small])
            if cuts is None:
                continue
            try:
                mean, median = matching.crop_distance(detail(big), layouts[small], *cuts)
            except (OSError, ValueError) as e:
                log.warning("images %s, %s: no crop check: %s", shas[a], shas[b], e)
                continue
            if mean <= MAX_CROPPED and median <= MAX_CROPPED_MEDIAN:
                confirmed[n], pixels[n] = True, mean
    confirmed = np.flatnonzero(confirmed)
    ham = matching.hamming(hashes, pairs[confirmed])
    return {
        (shas[pairs[n][0]], shas[pairs[n][1]]): _Edge(
            DuplicateEvidence.NEAR,
            int(h),
            None if np.isnan(cos[n]) else round(float(cos[n]), 4),
            round(float(pixels[n]), 3),
        )
        for n, h in zip(confirmed, ham, strict=True)
    }


def _store(
    db: Database,
    dataset_id: int,
    item_ids: list[int],
    groups: list[list[int]],
    edges: dict[tuple[int, int], _Edge],
) -> tuple[int, int]:
    """Replace the dataset's groups; (exact, near) member counts."""
    counts = {DuplicateEvidence.EXACT: 0, DuplicateEvidence.NEAR: 0}
    now = utcnow()
    with db.write() as s:
        s.execute(delete(DuplicateGroup).where(DuplicateGroup.dataset_id == dataset_id))
        for members in groups:
            tree = matching.spanning_tree(members, edges)
            group = DuplicateGroup(
                dataset_id=dataset_id,
                representative_id=item_ids[members[0]],
                size=len(members),
                created_at=now,
            )
            rows: list[DuplicateMember] = []
            for m in members:
                if m == members[0]:
                    rows.append(
                        DuplicateMember(item_id=item_ids[m], evidence=DuplicateEvidence.REPRESENTATIVE)
                    )
                    continue
                via = tree[m]
                edge = edges.get((via, m)) or edges[(m, via)]
                counts[edge.evidence] += 1
                rows.append(
                    DuplicateMember(
                        item_id=item_ids[m],
                        evidence=edge.evidence,
                        matched_id=item_ids[via],
                        hamming=edge.hamming,
                        cosine=edge.cosine,
                        pixels=edge.pixels,
                    )
                )
            group.members = rows
            s.add(group)
    return counts[DuplicateEvidence.EXACT], counts[DuplicateEvidence.NEAR]
