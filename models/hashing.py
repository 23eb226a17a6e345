"""Content hashes: the one SHA-256 helper of the project.

A file's SHA-256 names its image in the media store, keys its vectors in the embedding store,
tags a local CLIP checkpoint, and lists an exported file in the export's manifest. It lives at
the bottom of the layers (models/ imports nothing of services) so that every layer can use it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (a checkpoint or an image of any size)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
