"""Tests for BM25 sparse vectors (term frequency part; Qdrant applies IDF)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.book.retrieval import sparse
from common.book.retrieval.sparse import (
    SparseVector,
    document_vector,
    query_vector,
    term_index,
    tokenize,
)


def test_tokenize_lowercases_splits_stems_and_drops_stopwords() -> None:
    assert tokenize("The Robots are Running!") == ["robot", "run"]
    assert tokenize("cmd_vel/odom, x86-64") == ["cmd", "vel", "odom", "x86", "64"]
    assert tokenize("") == []
    assert tokenize("the and of to") == []


def test_tokenize_keeps_single_digits_and_versions() -> None:
    assert tokenize("ROS 1 vs ROS 2 vs ROS2") == ["ros", "1", "vs", "ros", "2", "vs", "ros2"]
    assert query_vector("What changed in ROS 1?") != query_vector("What changed in ROS 2?")


def test_term_index_is_stable_and_31_bit() -> None:
    assert term_index("robot") == 1479245540  # zlib.crc32(b"robot") & 0x7FFFFFFF
    assert term_index("ros2") == 1866219683
    assert all(0 <= term_index(t) < 2**31 for t in ["", "a", "über", "x" * 1000])
    code = "from common.book.retrieval.sparse import term_index; print(term_index('robot'))"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": ":".join(sys.path)},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "1479245540"


def test_document_vector_matches_bm25_formula() -> None:
    vector = document_vector("robot robots walking", k1=1.2, b=0.75, avg_len=4.0)
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 4.0)
    expected = {
        term_index("robot"): 2 * 2.2 / (2 + norm),
        term_index("walk"): 1 * 2.2 / (1 + norm),
    }
    assert vector.indices == sorted(expected)
    assert vector.values == pytest.approx([expected[i] for i in vector.indices])


def test_document_vector_saturates_and_normalises_length() -> None:
    once = document_vector("gazebo").values[0]
    many = document_vector("gazebo " * 50).values[0]
    assert once < many < 1.2 + 1
    short = document_vector("gazebo simulation").values
    padded = document_vector("gazebo simulation " + "filler " * 400)
    gazebo = padded.indices.index(term_index("gazebo"))
    assert padded.values[gazebo] < short[0]


def test_colliding_terms_are_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sparse, "term_index", lambda term: 7)
    vector = document_vector("alpha beta gamma", k1=1.2, b=0.0)
    assert vector.indices == [7]
    assert vector.values == pytest.approx([3 * 2.2 / (3 + 1.2)])
    assert query_vector("alpha beta") == SparseVector([7], [1.0])


def test_query_vector_has_one_per_distinct_term() -> None:
    vector = query_vector("Walking robots walk; the robot walked")
    assert vector.indices == sorted({term_index("walk"), term_index("robot")})
    assert vector.values == [1.0, 1.0]


def test_empty_text_gives_empty_vectors() -> None:
    assert document_vector("the of and") == SparseVector([], [])
    assert query_vector("") == SparseVector([], [])


def test_avg_len_must_be_positive() -> None:
    with pytest.raises(ValueError):
        document_vector("robot", avg_len=0)
