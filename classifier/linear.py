"""Weighted L2-regularised logistic regression over dense, sparse or two-block features.

`fit_logistic` minimises the objective scikit-learn's `LogisticRegression(solver="lbfgs")`
minimises (the weighted mean log loss plus ||W||² / (2·C·Σw), the intercept unpenalised;
a binary problem has one weight vector, more classes one per class), with the same
L-BFGS settings, so it finds the same model (a large problem starts nearer, from a
sample's solution, keeps a longer history, and stops by the same rule). It exists for
`Blocks`: the hybrid head's features are a dense embedding beside sparse TF-IDF words.
As one sparse matrix, every product walks the embedding's 384 stored values per row
through a sparse kernel: on Banking77 (10,003 texts, 77 concepts) that made a fit several
times slower than the same products done block by block, the embedding through BLAS.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, sparse
from scipy.special import expit, log_expit, logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning

TOL = 1e-4  # scikit-learn's default for lbfgs
# Above twice this many rows, a fit with no start starts from the fit of a sample of this
# many: the final fit of 100,000 texts (3 concepts, 50,384 columns) took 203 iterations,
# 15.0 s; from a 20,000-row start, 2.9 s and then 105 iterations, 8.5 s.
WARM_ROWS = 20_000
# L-BFGS keeps scikit-learn's 10 corrections, or LARGE_HISTORY from WARM_ROWS rows: there a
# gradient costs far more than a longer history, and the long tail of small steps is what
# a longer history shortens. The same final fit, from its sample's start: 105 iterations
# with 10, 28 with 30 (the 20,000-row sample's own fit: 140 and 56). On Banking77 (10,003
# rows) every fit converges within 35 iterations, where the history length changes nothing.
LARGE_HISTORY = 30


@dataclass(frozen=True)
class Blocks:
    """Features in two blocks side by side: `dense` columns, then `words` (sparse)."""

    dense: np.ndarray
    words: sparse.csr_matrix

    ndim = 2

    @property
    def shape(self) -> tuple[int, int]:
        return self.dense.shape[0], self.dense.shape[1] + self.words.shape[1]

    def tocsr(self) -> sparse.csr_matrix:
        return sparse.hstack([sparse.csr_matrix(self.dense), self.words], format="csr")


Features = np.ndarray | sparse.csr_matrix | Blocks


def as_features(X: Any) -> Features:
    """`X` as an array, CSR, or `Blocks` of both: sparse values as float64, dense ones as
    float32 if they are (embeddings are), else float64."""
    if isinstance(X, Blocks):
        return Blocks(_dense(X.dense), _csr(X.words))
    if sparse.issparse(X):
        return _csr(X)
    return _dense(X)


def _dense(X: Any) -> np.ndarray:
    X = np.asarray(X)
    return X if X.dtype == np.float32 else X.astype(np.float64, copy=False)


def _csr(X: Any) -> sparse.csr_matrix:
    return sparse.csr_matrix(X, dtype=np.float64)


def rows(X: Features, index: np.ndarray) -> Features:
    if len(index) == X.shape[0] and (np.diff(index) == 1).all():
        return X  # every row in order: no copy
    if isinstance(X, Blocks):
        return Blocks(np.take(X.dense, index, axis=0), X.words[index])
    return X[index]


def stack(top: Features, bottom: Features) -> Features:
    """The rows of `top`, then those of `bottom`."""
    if isinstance(top, Blocks):
        return Blocks(
            np.vstack([top.dense, bottom.dense]),
            sparse.vstack([top.words, bottom.words], format="csr"),
        )
    if sparse.issparse(top):
        return sparse.vstack([top, bottom], format="csr")
    return np.vstack([top, bottom])


def dot(X: Features, W: np.ndarray) -> np.ndarray:
    """X @ W.T, for W of shape (k, n_features)."""
    if isinstance(X, Blocks):
        d = X.dense.shape[1]
        return _dense_dot(X.dense, W[:, :d]) + np.asarray(X.words @ W[:, d:].T)
    if sparse.issparse(X):
        return np.asarray(X @ W.T)
    return _dense_dot(X, W)


def _tdot(X: Features, G: np.ndarray) -> np.ndarray:
    """G.T @ X, shape (k, n_features), for G of shape (n, k)."""
    if isinstance(X, Blocks):
        return np.hstack([_dense_tdot(X.dense, G), np.asarray(X.words.T @ G).T])
    if sparse.issparse(X):
        return np.asarray(X.T @ G).T
    return _dense_tdot(X, G)


# Dense products run in the matrix's own precision: float32 embeddings are not copied to
# float64 for every product, which halves the memory a fit reads (the bulk of its time at
# 100,000 inputs); the results are float64.


def _dense_dot(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    return (X @ W.T.astype(X.dtype)).astype(np.float64, copy=False)


def _dense_tdot(X: np.ndarray, G: np.ndarray) -> np.ndarray:
    return (G.T.astype(X.dtype) @ X).astype(np.float64, copy=False)


def used_columns(X: Features) -> tuple[Features, np.ndarray | None]:
    """`X` without the sparse columns no row uses, and the kept columns' indices (None
    when every column is kept). Such a column's weight is 0 at the optimum (its only term
    is the penalty), so fitting without it gives the same model with fewer parameters."""
    if isinstance(X, Blocks):
        used = np.unique(X.words.indices)
        if len(used) == X.words.shape[1]:
            return X, None
        d = X.dense.shape[1]
        return Blocks(X.dense, X.words[:, used]), np.concatenate([np.arange(d), d + used])
    if sparse.issparse(X):
        used = np.unique(X.indices)
        if len(used) < X.shape[1]:
            return X[:, used], used
    return X, None


def fit_logistic(
    X: Features,
    y: np.ndarray,
    w: np.ndarray,
    C: float,
    n_classes: int,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    max_iter: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (k, n_features) and intercepts (k,): k = 1 for two classes (the weights of
    class 1 against class 0), else n_classes. `start` warm-starts from such a pair; without
    one, a large problem starts from a sample's solution (see `WARM_ROWS`)."""
    n, width = X.shape
    k = 1 if n_classes == 2 else n_classes
    if start is None and n > 2 * WARM_ROWS:
        # The same objective on a random sample (alpha below is kept: C grows as the total
        # weight shrinks) is cheap to solve and lands near the full solution.
        picked = np.sort(np.random.default_rng(0).choice(n, WARM_ROWS, replace=False))
        C_sample = C * w.sum() / w[picked].sum()
        start = fit_logistic(
            rows(X, picked), y[picked], w[picked], C_sample, n_classes, None, max_iter
        )
    total = w.sum()
    alpha = 1.0 / (C * total)
    weights = w / total
    if k == 1:
        target = (y == 1).astype(np.float64)
    else:
        target = np.zeros((n, k))
        target[np.arange(n), y] = 1.0

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: k * width].reshape(k, width), theta[k * width :]
        Z = dot(X, W) + b
        if k == 1:
            z = Z[:, 0]
            loss = weights @ (-log_expit(z) + (1.0 - target) * z)
            G = (weights * (expit(z) - target))[:, None]
        else:
            loss = weights @ (logsumexp(Z, axis=1) - (Z * target).sum(axis=1))
            G = weights[:, None] * (softmax(Z, axis=1) - target)
        loss += 0.5 * alpha * np.vdot(W, W)
        gradient = _tdot(X, G) + alpha * W
        return float(loss), np.concatenate([gradient.ravel(), G.sum(axis=0)])

    theta = np.zeros(k * width + k)
    if start is not None:
        theta[: k * width], theta[k * width :] = start[0].ravel(), start[1]
    result = optimize.minimize(
        loss_and_gradient,
        theta,
        jac=True,
        method="L-BFGS-B",
        options={
            "maxiter": max_iter,
            "maxls": 50,
            "gtol": TOL,
            "ftol": 64 * np.finfo(float).eps,
            "maxcor": LARGE_HISTORY if n >= WARM_ROWS else 10,
        },
    )
    if result.status == 1:
        warnings.warn(
            f"lbfgs stopped after {max_iter} iterations", ConvergenceWarning, stacklevel=2
        )
    return result.x[: k * width].reshape(k, width), result.x[k * width :]
