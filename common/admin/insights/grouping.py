"""Grouping questions by meaning: greedy leader clustering of unit vectors against centroids.

Each question joins the group whose centroid (the normalised sum of its members' vectors) is
closest, if that similarity reaches THRESHOLD; otherwise it starts a group of its own. Vectors
arrive in batches: one matrix product compares a batch with every centroid, and only the
questions that found no group are compared one by one with the groups this batch started. Groups
persist between runs (`insights_groups`), so a later run only places the new questions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

# Calibrated on bench/insights_paraphrases.json (`python -m bench.insights --calibrate`): at
# 0.65 no two topics share a group (0.625 already joins "ROS 2 node" with "ROS 2 topics") and
# 77% of paraphrase pairs do; MiniLM misses acronym against expansion ("SLAM" and
# "simultaneous localization and mapping"), which stay apart.
THRESHOLD = 0.65
# Two groups whose centroids drifted this close are near-duplicates and become one.
MERGE_THRESHOLD = 0.80

Vectors = npt.NDArray[np.float32]


def to_bytes(vector: npt.NDArray[np.floating]) -> bytes:
    """A vector as stored for a question: float16, little-endian."""
    return np.asarray(vector, dtype="<f2").tobytes()


def from_bytes(blobs: Iterable[bytes], dimension: int) -> Vectors:
    """Stored float16 vectors as one float32 matrix, a row each."""
    joined = b"".join(blobs)
    matrix = np.frombuffer(joined, dtype="<f2").astype(np.float32)
    return matrix.reshape(-1, dimension)


def group_id_for(seed: str) -> str:
    """A short, stable id for a group started by the question `seed` (a job id)."""
    return "g-" + hashlib.sha256(seed.encode()).hexdigest()[:10]


@dataclass
class Groups:
    """The centroids of every group: sums of member vectors, and how many members each has."""

    dimension: int
    ids: list[str] = field(default_factory=list)
    sums: Vectors = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    sizes: list[int] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.sums.size == 0:
            self.sums = np.zeros((len(self.ids), self.dimension), dtype=np.float32)
        self._index = {gid: i for i, gid in enumerate(self.ids)}
        self._centroids = _normalise(self.sums)

    def centroid(self, group_id: str) -> Vectors:
        """The unit centroid of one group."""
        return self._centroids[self._index[group_id]]

    def assign(self, vectors: Vectors, seeds: list[str], threshold: float = THRESHOLD) -> list[str]:
        """Place a batch of unit vectors (in order), starting groups as needed; their group ids."""
        count, start = len(vectors), len(self.ids)
        target = np.full(count, -1, dtype=np.int64)
        if start:
            similarity = vectors @ self._centroids.T
            best = similarity.argmax(axis=1)
            matched = similarity[np.arange(count), best] >= threshold
            target[matched] = best[matched]
        # Questions no existing group took: leaders among themselves, in order.
        unmatched = np.nonzero(target < 0)[0]
        fresh = np.zeros((max(1, len(unmatched)), self.dimension), dtype=np.float32)
        units = np.zeros_like(fresh)  # the fresh groups' unit centroids, kept up to date
        made = 0
        for i in unmatched:
            vector = vectors[i]
            if made:
                fresh_sim = units[:made] @ vector
                j = int(fresh_sim.argmax())
                if fresh_sim[j] >= threshold:
                    fresh[j] += vector
                    units[j] = fresh[j] / max(float(np.linalg.norm(fresh[j])), 1e-12)
                    target[i] = start + j
                    continue
            fresh[made] = units[made] = vector
            target[i] = start + made
            made += 1
            self.ids.append(group_id_for(seeds[i]))
        old = target < start
        sums = np.vstack([self.sums, np.zeros((made, self.dimension), dtype=np.float32)])
        np.add.at(sums, target[old], vectors[old])
        sums[start:] = fresh[:made]
        self.sums = sums
        grown = np.bincount(target, minlength=len(self.ids))
        self.sizes = [s + int(g) for s, g in zip([*self.sizes, *([0] * made)], grown, strict=True)]
        self._index = {gid: i for i, gid in enumerate(self.ids)}
        self._centroids = _normalise(self.sums)
        placed = [self.ids[t] for t in target]
        self.changed.update(placed)
        return placed

    def merge_near_duplicates(self, threshold: float = MERGE_THRESHOLD) -> dict[str, str]:
        """Merge groups whose centroids are near-duplicates; old id -> surviving id."""
        changed = [self._index[g] for g in self.changed if g in self._index]
        if not changed or len(self.ids) < 2:
            return {}
        parent = list(range(len(self.ids)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        rows = np.array(sorted(changed))
        for start in range(0, len(rows), 1024):
            block = rows[start : start + 1024]
            similarity = self._centroids[block] @ self._centroids.T
            similarity[np.arange(len(block)), block] = -1.0
            for r, c in zip(*np.nonzero(similarity >= threshold), strict=True):
                a, b = root(int(block[r])), root(int(c))
                if a != b:
                    # The larger (older on a tie) group keeps its id.
                    keep, drop = (a, b) if (self.sizes[a], -a) >= (self.sizes[b], -b) else (b, a)
                    parent[drop] = keep
        renamed = {self.ids[i]: self.ids[root(i)] for i in range(len(self.ids)) if root(i) != i}
        if renamed:
            self._fold(renamed)
        return renamed

    def _fold(self, renamed: dict[str, str]) -> None:
        for old, new in renamed.items():
            src, dst = self._index[old], self._index[new]
            self.sums[dst] += self.sums[src]
            self.sizes[dst] += self.sizes[src]
        keep = [i for i, gid in enumerate(self.ids) if gid not in renamed]
        self.ids = [self.ids[i] for i in keep]
        self.sums = self.sums[keep]
        self.sizes = [self.sizes[i] for i in keep]
        self._index = {gid: i for i, gid in enumerate(self.ids)}
        self._centroids = _normalise(self.sums)
        self.changed = {renamed.get(g, g) for g in self.changed}


def _normalise(matrix: Vectors) -> Vectors:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True) if matrix.size else np.ones((0, 1))
    result: Vectors = (matrix / np.clip(norms, 1e-12, None)).astype(np.float32)
    return result
