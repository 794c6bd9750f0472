import numpy as np
import pytest
from scipy import sparse
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from classifier import linear
from classifier.linear import Blocks, as_features, dot, fit_logistic, rows, stack, used_columns


def problem(n_classes: int, seed: int = 0):
    """Dense columns beside sparse word-like ones, with weights, as the hybrid head has."""
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, n_classes, n)
    dense = rng.normal(size=(n, 8)) + y[:, None] * 0.3
    noise = sparse.random(n, 40, density=0.1, random_state=seed, format="csr")
    telling = sparse.csr_matrix((np.ones(n), (np.arange(n), y)), shape=noise.shape)
    w = rng.uniform(0.5, 1.5, n)
    return Blocks(dense, (noise + telling).tocsr()), y, w


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("kind", ["dense", "sparse", "blocks"])
def test_it_finds_scikit_learns_model(n_classes: int, kind: str) -> None:
    blocks, y, w = problem(n_classes)
    X = {"dense": blocks.tocsr().toarray(), "sparse": blocks.tocsr(), "blocks": blocks}[kind]
    ours = fit_logistic(X, y, w, 10.0, n_classes)
    theirs = LogisticRegression(C=10.0, max_iter=1000).fit(blocks.tocsr(), y, sample_weight=w)
    np.testing.assert_allclose(ours[0], theirs.coef_, atol=2e-3)
    np.testing.assert_allclose(ours[1], theirs.intercept_, atol=2e-3)
    ours_p = dot(X, ours[0]) + ours[1]
    theirs_p = theirs.decision_function(blocks.tocsr()).reshape(ours_p.shape)
    np.testing.assert_allclose(ours_p, theirs_p, atol=5e-3)


def test_blocks_take_rows_stack_and_multiply_as_one_matrix() -> None:
    blocks, _, _ = problem(3)
    whole = blocks.tocsr().toarray()
    index = np.array([5, 1, 7])
    np.testing.assert_array_equal(rows(blocks, index).tocsr().toarray(), whole[index])
    np.testing.assert_array_equal(stack(blocks, blocks).tocsr().toarray(), np.vstack([whole] * 2))
    W = np.random.default_rng(1).normal(size=(3, whole.shape[1]))
    np.testing.assert_allclose(dot(blocks, W), whole @ W.T)


def test_unused_word_columns_are_left_out_and_the_dense_ones_kept() -> None:
    dense = np.ones((2, 3))
    words = sparse.csr_matrix(np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]]))
    narrow, columns = used_columns(Blocks(dense, words))
    assert narrow.shape == (2, 5)
    np.testing.assert_array_equal(columns, [0, 1, 2, 4, 6])
    assert used_columns(dense) == (dense, None)


def objective(X: Blocks, y: np.ndarray, w: np.ndarray, C: float, fit: tuple) -> float:
    """What fit_logistic minimises: the weighted mean log loss plus the penalty."""
    Z = dot(X, fit[0]) + fit[1]
    p = softmax(Z, axis=1)[np.arange(len(y)), y]
    return float(w @ -np.log(p) / w.sum() + np.vdot(fit[0], fit[0]) / (2 * C * w.sum()))


def test_a_large_problem_starts_from_a_samples_fit_and_fits_as_well(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks, y, w = problem(3)
    cold = fit_logistic(blocks, y, w, 10.0, 3)
    monkeypatch.setattr(linear, "WARM_ROWS", 100)  # 300 rows: a 100-row sample first
    warm = fit_logistic(blocks, y, w, 10.0, 3)
    assert objective(blocks, y, w, 10.0, warm) <= objective(blocks, y, w, 10.0, cold) + 1e-5
    scores = [dot(blocks, fit[0]) + fit[1] for fit in (warm, cold)]
    np.testing.assert_array_equal(scores[0].argmax(axis=1), scores[1].argmax(axis=1))


def test_float32_embeddings_stay_float32_and_fit_the_same_model() -> None:
    blocks, y, w = problem(2)
    single = Blocks(blocks.dense.astype(np.float32), blocks.words)
    assert as_features(single).dense.dtype == np.float32
    assert as_features(blocks.dense.astype(np.float16)).dtype == np.float64
    ours = fit_logistic(single, y, w, 10.0, 2)
    theirs = fit_logistic(blocks, y, w, 10.0, 2)
    np.testing.assert_allclose(ours[0], theirs[0], atol=2e-3)
    assert dot(single, ours[0]).dtype == np.float64
