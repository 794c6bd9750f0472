import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from classifier.linear import Blocks, dot, fit_logistic, rows, stack, used_columns


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
