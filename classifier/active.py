"""Uncertainty sampling: which unlabeled texts a person should label next.

    order = most_uncertain(head.predict_proba(X), exclusive=False)
    ask_next = order[:10]

A one-vs-rest head is least sure of a text when some concept's probability is nearest
0.5; a mutually exclusive (softmax) head when its top two concepts are nearest each other
(the margin). Ties keep the texts' order, so a caller's shuffle decides between them.
"""

import numpy as np


def uncertainty(probabilities: np.ndarray, exclusive: bool = False) -> np.ndarray:
    """One value per row from 0 (sure) to 1 (a coin toss) for rows of concept probabilities."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError("probabilities must be a 2-D array: one row per text")
    if p.shape[0] == 0 or p.shape[1] == 0:
        return np.zeros(p.shape[0])
    if exclusive and p.shape[1] > 1:
        top_two = -np.sort(-p, axis=1)[:, :2]
        return 1.0 - (top_two[:, 0] - top_two[:, 1])
    return 1.0 - np.min(np.abs(2.0 * p - 1.0), axis=1)


def most_uncertain(probabilities: np.ndarray, exclusive: bool = False) -> np.ndarray:
    """Row indices, the least certain first (a stable sort: ties keep their order)."""
    return np.argsort(-uncertainty(probabilities, exclusive), kind="stable")
