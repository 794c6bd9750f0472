"""ONNX Runtime versions of a sentence-transformers model: exported once, cached on disk.

sentence-transformers' own ONNX support needs optimum, which does not install beside
transformers 5, so the model is exported here: the transformer with mean pooling and L2
normalisation inside the graph, batch and sequence axes dynamic. The int8 variant is the
fp32 export with its matrix multiplications quantised (dynamic, per channel).

An export is a cache, rebuilt by any process that lacks it: files are keyed by the model's
version and the export format, written to a temporary name and renamed (a reader never
sees half a file), and a file lock keeps two processes from exporting at once.

Importing this module is cheap; torch is imported only to export.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Encoding, Tokenizer

log = logging.getLogger(__name__)

# Bump when the exported graph changes (inputs, pooling, opset, quantisation settings).
EXPORT_FORMAT = 1
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def default_cache_dir() -> Path:
    """Where exports go unless the caller says otherwise: $PORTAL_ONNX_CACHE_DIR, or the
    user's cache directory."""
    configured = os.getenv("PORTAL_ONNX_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.getenv("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "textcat-portal" / "onnx"


def export_name(model_key: str, quantized: bool) -> str:
    """The cache file name: a new model version, torch, onnxruntime or export format gives
    a new file."""
    key = f"{model_key}-torch{package_version('torch')}-format{EXPORT_FORMAT}"
    if quantized:
        key += f"-int8-ort{package_version('onnxruntime')}"
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in key) + ".onnx"


class OnnxEmbedder:
    """One ONNX Runtime session and the model's own tokenizer; same API as `Embedder`."""

    def __init__(
        self,
        model_id: str,
        session: onnxruntime.InferenceSession,
        tokenizer: Tokenizer,
        one_text_per_run: bool = False,
    ) -> None:
        self.model_id = model_id
        self.dimensions = 0
        self._one_text_per_run = one_text_per_run
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = [i.name for i in session.get_inputs()]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed `texts`: float32 array of shape (len(texts), dimensions), L2-normalised rows.

        Texts are tokenised once, then run in batches of similar length (less padding),
        and the rows put back in the callers' order. A dynamically quantised model runs
        one text at a time: it scales its activations per run, so a text's vector would
        otherwise depend on the texts batched with it (up to 0.05 per component).
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        vectors: np.ndarray | None = None
        size = 1 if self._one_text_per_run else batch_size
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            batch = self._session.run(None, self._feed([encodings[i] for i in rows]))[0]
            if vectors is None:
                vectors = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
            vectors[rows] = batch
        assert vectors is not None
        return vectors

    def _feed(self, encodings: list[Encoding]) -> dict[str, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in INPUTS}
        for row, e in enumerate(encodings):
            arrays["input_ids"][row, : len(e.ids)] = e.ids
            arrays["attention_mask"][row, : len(e.ids)] = 1
            arrays["token_type_ids"][row, : len(e.ids)] = e.type_ids
        return {name: arrays[name] for name in self._inputs}

    def __repr__(self) -> str:
        return f"<OnnxEmbedder {self.model_id!r} ({self.dimensions} dims)>"


def load(
    model_id: str,
    source: Path,
    model_key: str,
    quantized: bool,
    cache_dir: Path,
    threads: int | None = None,
) -> OnnxEmbedder:
    """The ONNX embedder for the sentence-transformers model in directory `source`,
    exporting it into `cache_dir` first if no usable export is there. `model_key` names
    the model and its version in the cache (e.g. "all-MiniLM-L6-v2-0.1.0").

    `threads` sets ONNX Runtime's intra-op threads (None: one per core).
    """
    fp32 = cache_dir / export_name(model_key, quantized=False)
    path = cache_dir / export_name(model_key, quantized=True) if quantized else fp32

    def build(tmp: Path) -> None:
        if quantized:
            ensure(fp32, lambda fp32_tmp: export(source, fp32_tmp))
            quantize(fp32, tmp)
        else:
            export(source, tmp)

    ensure(path, build)
    try:
        session = open_session(path, threads)
    except Exception as error:  # onnxruntime raises several types for a bad file
        log.warning("ONNX export %s is unreadable (%s); exporting it again", path, error)
        path.unlink(missing_ok=True)
        if quantized:
            fp32.unlink(missing_ok=True)
        ensure(path, build)
        session = open_session(path, threads)
    embedder = OnnxEmbedder(model_id, session, tokenizer(source), one_text_per_run=quantized)
    embedder.dimensions = embedder.encode(["probe"]).shape[1]
    return embedder


def open_session(path: Path, threads: int | None) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def tokenizer(source: Path) -> Tokenizer:
    """The model's fast tokenizer, truncating at the model's max_seq_length as
    sentence-transformers does, without padding (batches are padded as they are built)."""
    from tokenizers import Tokenizer

    config = json.loads((source / "sentence_bert_config.json").read_text())
    result = Tokenizer.from_file(str(source / "tokenizer.json"))
    result.enable_truncation(int(config["max_seq_length"]))
    result.no_padding()
    return result


def ensure(path: Path, build: Callable[[Path], None]) -> None:
    """Make `path` with `build(temporary_path)` unless it exists; one process at a time."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(path.name + ".lock")):
        if path.exists():  # another process made it while this one waited
            return
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(handle)
        tmp = Path(tmp_name)
        try:
            build(tmp)
            tmp.chmod(0o644)  # mkstemp's 0600 would hide it from other users' processes
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def export(source: Path, target: Path) -> None:
    """Export the transformer with mean pooling and L2 normalisation to ONNX at `target`."""
    import torch
    from transformers import AutoModel

    log.info("exporting %s to ONNX (once per version)", source)
    # The TorchScript exporter (dynamo=False): its graph ran twice as fast in ONNX
    # Runtime as the torch.export one, and gives the same embeddings.

    class Pooled(torch.nn.Module):
        """Transformer, then the mean of the unmasked token vectors, L2-normalised."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = AutoModel.from_pretrained(str(source), attn_implementation="eager")

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    module = Pooled().eval()
    example = {name: torch.ones((2, 8), dtype=torch.long) for name in INPUTS}
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    # The tracer warns about Python conditions it freezes; they hold for any batch or
    # length here (the attention mask always covers the whole sequence).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(example.values()),
            str(target),
            input_names=list(INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def quantize(fp32: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the matrix multiplications, per output channel: on
    SMS texts it kept a mean cosine of 0.99 to fp32, against 0.95 per tensor."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantiser logs a line per tensor on the root logger; keep them out of the logs.
    root = logging.getLogger()
    root.addFilter(_not_from_the_quantiser)
    try:
        quantize_dynamic(
            str(fp32),
            str(target),
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
    finally:
        root.removeFilter(_not_from_the_quantiser)


def _not_from_the_quantiser(record: logging.LogRecord) -> bool:
    return f"onnxruntime{os.sep}quantization" not in record.pathname
