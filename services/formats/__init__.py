"""Readers of public benchmark formats, each turning files into a :class:`~services.bundle.ParsedBundle`.

Each reader takes the benchmark's folder (or, where the format is one file per split, a file)
and ``allowed_roots``, plus a ``split`` (and format-specific) keyword with a sensible default.
The formats and their pitfalls are described in the project's formats notes; each module's
docstring says how its fields map onto items, queries and qrels. None of these benchmarks ships
its images with the annotations, so every reader allows missing images (placeholder cards).
"""

from __future__ import annotations

from collections.abc import Callable

from services.formats.beir import read_beir
from services.formats.circo import read_circo
from services.formats.cirr import read_cirr
from services.formats.fashioniq import read_fashioniq
from services.formats.mbeir import read_mbeir
from services.formats.mcmr import read_mcmr
from services.formats.merit import read_merit
from services.formats.native import ParsedBundle
from services.formats.trec import read_trec_qrels, read_trec_run

FORMAT_READERS: dict[str, Callable[..., ParsedBundle]] = {
    "mcmr": read_mcmr,
    "merit": read_merit,
    "circo": read_circo,
    "cirr": read_cirr,
    "fashioniq": read_fashioniq,
    "mbeir": read_mbeir,
    "beir": read_beir,
}

__all__ = [
    "FORMAT_READERS",
    "read_beir",
    "read_circo",
    "read_cirr",
    "read_fashioniq",
    "read_mbeir",
    "read_mcmr",
    "read_merit",
    "read_trec_qrels",
    "read_trec_run",
]
