"""Grouping by meaning on a labelled set: paraphrases together, different topics apart."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.admin.insights.grouping import THRESHOLD, Groups
from common.book.retrieval.embeddings import LocalMiniLM

Labelled = tuple[list[str], list[str], Any]
LABELLED = Path(__file__).parents[4] / "bench" / "insights_paraphrases.json"


@pytest.fixture(scope="module")
def labelled() -> Labelled:
    topics = json.loads(LABELLED.read_text())["topics"]
    texts = [q for qs in topics.values() for q in qs]
    labels = [t for t, qs in topics.items() for _ in qs]
    vectors = np.array(LocalMiniLM(threads=1).embed_documents(texts), dtype=np.float32)
    return texts, labels, vectors


def pairs(labels: list[str], placed: list[str]) -> tuple[int, int, int]:
    """(paraphrase pairs together, paraphrase pairs apart, pairs of topics together)."""
    together = apart = mixed = 0
    for i, j in itertools.combinations(range(len(labels)), 2):
        same_group, same_topic = placed[i] == placed[j], labels[i] == labels[j]
        together += same_group and same_topic
        apart += same_topic and not same_group
        mixed += same_group and not same_topic
    return together, apart, mixed


def test_paraphrases_meet_and_topics_stay_apart(labelled: Labelled) -> None:
    texts, labels, vectors = labelled
    placed = Groups(vectors.shape[1]).assign(vectors, texts)
    together, apart, mixed = pairs(labels, placed)
    assert mixed == 0
    assert together / (together + apart) >= 0.75
    # Most topics land in one group with most of their paraphrases.
    held = sum(
        max(placed[i] for i in range(len(texts)) if labels[i] == topic) is not None
        and max(
            sum(1 for i in range(len(texts)) if labels[i] == topic and placed[i] == g)
            for g in set(placed)
        )
        >= 3
        for topic in set(labels)
    )
    assert held >= 13


def test_batches_group_as_one_pass(labelled: Labelled) -> None:
    texts, labels, vectors = labelled
    whole = Groups(vectors.shape[1]).assign(vectors, texts)
    groups = Groups(vectors.shape[1])
    parts = [groups.assign(vectors[s : s + 7], texts[s : s + 7]) for s in range(0, len(texts), 7)]
    batched = [g for part in parts for g in part]
    assert pairs(labels, batched)[2] == 0
    assert len(set(batched)) <= len(set(whole)) + 2


def test_a_looser_threshold_mixes_topics(labelled: Labelled) -> None:
    texts, labels, vectors = labelled
    placed = Groups(vectors.shape[1]).assign(vectors, texts, threshold=THRESHOLD - 0.15)
    assert pairs(labels, placed)[2] > 0


def test_near_duplicate_groups_merge() -> None:
    groups = Groups(3)
    a = np.array([[1.0, 0.0, 0.0]] * 2, dtype=np.float32)
    b = np.array([[0.95, 0.3122, 0.0]], dtype=np.float32)
    c = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)
    first = groups.assign(a, ["a", "a2"])[0]
    # Placed with a stricter threshold, as groups that drifted together would be.
    second = groups.assign(b, ["b"], threshold=0.99)[0]
    third = groups.assign(c, ["c"])[0]
    assert len({first, second, third}) == 3
    assert groups.merge_near_duplicates(threshold=0.9) == {second: first}
    assert groups.ids == [first, third] and groups.sizes == [3, 1]
