"""BM25 sparse vectors for Qdrant collections whose sparse vector uses the IDF modifier.

Qdrant multiplies by IDF at query time, so documents store only BM25's saturated term frequency
and queries store 1.0 per term. Terms are lowercased alphanumeric runs, English stopwords
removed, Snowball-stemmed, then hashed with CRC32 into 31 bits so indices are stable across
processes (Python's own hash() is salted per process).
"""

from __future__ import annotations

import re
import threading
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

_TERM = re.compile(r"[^\W_]+")
_INDEX_MASK = 0x7FFFFFFF

# The usual (NLTK) English stopword list minus "can", as in CAN bus. Digits are never stopwords:
# "ROS 1" and "ROS 2" must stay apart.
_STOPWORD_TEXT = """
    a about above after again against all am an and any are aren as at be because been before
    being below between both but by couldn d did didn do does doesn doing don down during each
    few for from further had hadn has hasn have haven having he her here hers herself him
    himself his how i if in into is isn it its itself just ll m ma me mightn more most mustn my
    myself needn no nor not now o of off on once only or other our ours ourselves out over own
    re s same shan she should shouldn so some such t than that the their theirs them themselves
    then there these they this those through to too under until up ve very was wasn we were
    weren what when where which while who whom why will with won wouldn y you your yours
    yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_local = threading.local()


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Parallel lists of term indices (ascending) and weights, as Qdrant expects."""

    indices: list[int]
    values: list[float]


def tokenize(text: str) -> list[str]:
    """Lowercase, split on non-alphanumerics, drop stopwords and stem (Snowball English)."""
    words = _TERM.findall(unicodedata.normalize("NFKC", text).lower())
    return [_stem(word) for word in words if word not in STOPWORDS]


def term_index(term: str) -> int:
    """Stable 31-bit index of a term (CRC32 of its UTF-8 bytes)."""
    return zlib.crc32(term.encode("utf-8")) & _INDEX_MASK


def document_vector(
    text: str, k1: float = 1.2, b: float = 0.75, avg_len: float = 256.0
) -> SparseVector:
    """BM25 term-frequency part tf*(k1+1)/(tf + k1*(1-b+b*len/avg_len)) of each term."""
    if avg_len <= 0:
        raise ValueError("avg_len must be positive")
    terms = tokenize(text)
    # Terms whose hashes collide are merged by summing their frequencies before saturation.
    counts = Counter(term_index(term) for term in terms)
    norm = k1 * (1 - b + b * len(terms) / avg_len)
    indices = sorted(counts)
    return SparseVector(indices, [counts[i] * (k1 + 1) / (counts[i] + norm) for i in indices])


def query_vector(text: str) -> SparseVector:
    """Weight 1.0 per distinct query term; Qdrant's IDF modifier supplies the rest."""
    indices = sorted({term_index(term) for term in tokenize(text)})
    return SparseVector(indices, [1.0] * len(indices))


@lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    # Snowball stemmers keep state between calls, so each thread gets its own.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return str(stemmer.stemWord(word))
