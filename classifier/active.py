"""Uncertainty sampling: which unlabeled texts a person should label next.

    order = most_uncertain(head.predict_proba(X), exclusive=False)
    ask_next = order[:10]

A one-vs-rest head is least sure of a text when some concept's probability is nearest
0.5; a mutually exclusive (softmax) head when its top two concepts are nearest each other
(the margin). Ties keep the texts' order, so a caller's shuffle decides between them.

How many labels this order saves over labeling at random, simulated on the public sets
with the product's default head: the "Active learning" section of docs/BENCHMARKS.md
(`bench/active.py`).
"""

import numpy as np

TIE_DECIMALS = 12


def uncertainty(probabilities: np.ndarray, exclusive: bool = False) -> np.ndarray:
    """One value per row from 0 (sure) to 1 (a coin toss) for rows of concept probabilities."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(
            f"probabilities must be a 2-D array, one row per text; got shape {p.shape}"
        )
    if not np.all((p >= 0.0) & (p <= 1.0)):  # also False for NaN
        raise ValueError("probabilities must be numbers from 0 to 1")
    if p.shape[0] == 0 or p.shape[1] == 0:
        return np.zeros(p.shape[0])
    if exclusive and p.shape[1] > 1:
        top_two = -np.sort(-p, axis=1)[:, :2]
        return 1.0 - (top_two[:, 0] - top_two[:, 1])
    return 1.0 - np.min(np.abs(2.0 * p - 1.0), axis=1)


def most_uncertain(probabilities: np.ndarray, exclusive: bool = False) -> np.ndarray:
    """Row indices, the least certain first (a stable sort: ties keep their order)."""
    # Rounded so that mirror rows tie: |2 * 0.7 - 1| is 0.3999..., |2 * 0.3 - 1| is 0.4.
    rounded = np.round(uncertainty(probabilities, exclusive), TIE_DECIMALS)
    return np.argsort(-rounded, kind="stable")
