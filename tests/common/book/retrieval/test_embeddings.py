"""Tests for the local MiniLM embedder (real int8 ONNX model, CPU)."""

from __future__ import annotations

import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from common.book.retrieval.embeddings import (
    Embedder,
    LocalMiniLM,
    ModelIntegrityError,
    default_model_path,
    default_tokenizer_path,
    file_sha256,
)

NODE = "A ROS 2 node is a process that performs computation"
NODE_PARAPHRASE = "Nodes are the executables in a ROS graph"
BREAD = "Bake the bread at 220 degrees"


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLM:
    return LocalMiniLM()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def test_satisfies_protocol(embedder: LocalMiniLM) -> None:
    typed: Embedder = embedder
    assert typed.dimension == 384
    assert typed.name == "minilm-l6-v2-int8"


def test_vectors_are_384_d_and_unit_norm(embedder: LocalMiniLM) -> None:
    vectors = [*embedder.embed_documents([NODE, "", "x " * 1000]), embedder.embed_query(BREAD)]
    for vector in vectors:
        assert len(vector) == 384
        assert norm(vector) == pytest.approx(1.0, abs=1e-4)


def test_related_sentences_are_closer_than_unrelated(embedder: LocalMiniLM) -> None:
    node, paraphrase, bread = embedder.embed_documents([NODE, NODE_PARAPHRASE, BREAD])
    query = embedder.embed_query("What is a ROS node?")
    assert cosine(node, paraphrase) > cosine(node, bread) + 0.3
    assert cosine(node, paraphrase) > cosine(paraphrase, bread) + 0.3
    assert cosine(query, node) > cosine(query, bread)


def test_batch_and_single_agree(embedder: LocalMiniLM) -> None:
    texts = [NODE, NODE_PARAPHRASE, BREAD, "Gazebo simulates physics. " * 30]
    batched = embedder.embed_documents(texts)
    for text, vector in zip(texts, batched, strict=True):
        assert cosine(vector, embedder.embed_query(text)) > 0.999


def test_order_is_preserved_with_mixed_lengths(embedder: LocalMiniLM) -> None:
    texts = [f"Sentence {i} about topic {i}. " * (1 + (7 * i) % 13) for i in range(40)]
    small_batches = LocalMiniLM(batch_size=3)
    batched = embedder.embed_documents(texts)
    for i, text in enumerate(texts):
        single = small_batches.embed_query(text)
        assert cosine(batched[i], single) > 0.999
    reversed_back = small_batches.embed_documents(texts[::-1])[::-1]
    assert all(cosine(a, b) > 0.999 for a, b in zip(reversed_back, batched, strict=True))
    assert embedder.embed_documents([]) == []


def test_concurrent_first_use_loads_once_and_agrees() -> None:
    fresh = LocalMiniLM()
    with ThreadPoolExecutor(max_workers=4) as pool:
        vectors = list(pool.map(fresh.embed_query, [NODE] * 8))
    assert all(v == pytest.approx(vectors[0], abs=1e-6) for v in vectors)


def test_tampered_model_is_refused_before_loading(tmp_path: Path) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copyfile(default_model_path(), copy)
    LocalMiniLM(model_path=copy).load()  # an intact copy loads
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    tampered = LocalMiniLM(model_path=copy)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        tampered.embed_query(NODE)


def test_tampered_tokenizer_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "tokenizer.json"
    copy.write_bytes(default_tokenizer_path().read_bytes().replace(b"[UNK]", b"[UNX]", 1))
    assert file_sha256(copy) != file_sha256(default_tokenizer_path())
    with pytest.raises(ModelIntegrityError, match="sha256"):
        LocalMiniLM(tokenizer_path=copy).load()


def test_missing_file_fails_on_first_use_not_construction(tmp_path: Path) -> None:
    embedder = LocalMiniLM(model_path=tmp_path / "absent.onnx")
    with pytest.raises(ModelIntegrityError, match="cannot read"):
        embedder.embed_documents([NODE])
