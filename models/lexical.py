"""BM25 over items' title and text, with the ``bm25s`` library.

Tokenisation is built for catalogues that mix English and German: NFKC + case folding, words of
letters and digits, English and German stop words removed, then the English and the German
Snowball stemmers applied in turn. Chained stemming maps ``dresses``/``dress``,
``Kleider``/``Kleid``, ``Stühle``/``Stuhl`` and ``shoes``/``shoe`` together; it is applied
identically to items and queries, so what matters is that forms of one word meet, not that the
stems are words.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN

__all__ = ["Bm25Index", "tokenize"]

logger = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG on import, so its "Building index" lines reach any console
# handler; its warnings are all we want to hear.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    unicodedata.normalize("NFKC", w).casefold() for w in (*STOPWORDS_EN, *STOPWORDS_GERMAN)
)


@lru_cache(maxsize=1)
def _stemmers() -> tuple[Stemmer.Stemmer, Stemmer.Stemmer]:
    return Stemmer.Stemmer("english"), Stemmer.Stemmer("german")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into the index's terms (folded, stop words removed, stemmed)."""
    english, german = _stemmers()
    words = [w for w in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()) if w not in _STOPWORDS]
    return german.stemWords(english.stemWords(words))


class Bm25Index:
    """A BM25 index over items, searched by query texts.

    Build with :meth:`build`.
    """

    def __init__(self, retriever: bm25s.BM25, ids: list[str]) -> None:
        self._retriever = retriever
        self.ids = ids

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str]) -> Bm25Index:
        """Index ``texts[i]`` (an item's title and text, joined) under ``ids[i]``.

        Raises:
            ValueError: lengths differ, no items are given, or an id repeats.
        """
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts; give one text per item")
        if not ids:
            raise ValueError("no items to index; import items first")
        if len(set(ids)) != len(ids):
            raise ValueError("item ids repeat; give each item once")
        retriever = bm25s.BM25()
        retriever.index([tokenize(t) for t in texts], show_progress=False)
        logger.info("BM25 index over %d items, %d terms", len(ids), len(retriever.vocab_dict))
        return cls(retriever, list(ids))

    def save(self, folder: Path) -> None:
        """Write the index's arrays and vocabulary to ``folder`` (the ids are the caller's to keep)."""
        self._retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, ids: list[str]) -> Bm25Index:
        """Open an index :meth:`save` wrote, its arrays memory-mapped (shared by every process
        that opens it, read from disk as they are used)."""
        retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        if retriever.scores["num_docs"] != len(ids):
            raise ValueError(
                f"BM25 index in {folder} has {retriever.scores['num_docs']} items, not {len(ids)}"
            )
        return cls(retriever, list(ids))

    def search(self, query_texts: Sequence[str], k: int) -> tuple[list[list[str]], list[np.ndarray]]:
        """Return the top ``k`` items of each query.

        Items sharing no term with a query are not returned, so a list may be shorter than
        ``k`` (empty for a query of stop words only). Equal scores are ordered by index position.

        Returns:
            ``(ids, scores)``: per query, the item ids best first and their float32 BM25 scores.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        vocab = self._retriever.vocab_dict
        ids_out: list[list[str]] = []
        scores_out: list[np.ndarray] = []
        for text in query_texts:
            term_ids = [vocab[t] for t in tokenize(text) if t in vocab and t != ""]
            if not term_ids:
                ids_out.append([])
                scores_out.append(np.empty(0, dtype=np.float32))
                continue
            scores = np.asarray(self._retriever.get_scores_from_ids(term_ids), dtype=np.float32)
            top = _top_positive(scores, k)
            ids_out.append([self.ids[i] for i in top])
            scores_out.append(scores[top])
        return ids_out, scores_out

    def scores(self, query_text: str, *, coordination: float = 0.0) -> np.ndarray:
        """BM25 scores of one query against every item, in index order (float32, zeros where no
        term matches): for score-level fusion with another ranker over the whole pool.

        Args:
            query_text: the query.
            coordination: each item's score is multiplied by ``(m / n) ** coordination``, where
                ``n`` is the number of distinct query terms the index knows and ``m`` how many of
                them the item contains (Lucene's classic "coord" factor). With a positive value an
                item carrying every word asked for (every attribute: brand, material, size) ranks
                above one that repeats a few of them; 0 is plain BM25.
        """
        vocab = self._retriever.vocab_dict
        term_ids = [vocab[t] for t in tokenize(query_text) if t in vocab and t != ""]
        if not term_ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        if coordination <= 0:
            return np.asarray(self._retriever.get_scores_from_ids(term_ids), dtype=np.float32)
        distinct = sorted(set(term_ids))
        total = np.zeros(len(self.ids), dtype=np.float32)
        matched = np.zeros(len(self.ids), dtype=np.float32)
        for term in distinct:
            per_term = np.asarray(self._retriever.get_scores_from_ids([term]), dtype=np.float32)
            total += per_term * term_ids.count(term)  # a repeated query word counts as often as in plain BM25
            matched += per_term > 0
        return total * (matched / len(distinct)) ** coordination


def _top_positive(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest positive scores, ties to the lower index."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        kth = np.partition(scores[positive], len(positive) - k)[len(positive) - k]
        positive = positive[scores[positive] >= kth]
    order = np.lexsort((positive, -scores[positive]))[:k]
    return positive[order]
