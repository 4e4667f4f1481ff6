"""The answer cache's default bound serves no near miss of the calibration set."""

from __future__ import annotations

import json

from bench.answer_cache import PAIRS, curve, hits, pick, score
from common.book.retrieval.embeddings import LocalMiniLM
from common.platform.settings import Settings


def test_the_default_bound_has_no_false_hit_on_the_near_miss_set() -> None:
    data = json.loads(PAIRS.read_text())
    embedder = LocalMiniLM()
    different, same = score(data["different"], embedder), score(data["same"], embedder)
    bound = Settings(_env_file=None).answer_cache_min_similarity  # type: ignore[call-arg]

    assert hits(different, bound) == 0
    assert hits(different, bound, vetoes=False) > 0  # the vetoes do work similarity cannot
    assert hits(same, bound) >= len(same) // 2
    assert pick(curve(different, same), margin=0.0) <= bound
