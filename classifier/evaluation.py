"""Evaluating a concept head: cross-validated probabilities, then metrics as plain data.

    P, folds, note = cross_val_proba(ConceptHead(concepts), X, Y)
    report = evaluate(Y, P, concepts, threshold=0.5)  # JSON-able dict
    mistakes = most_confident_mistakes(Y, P, concepts)

Labels follow `classifier.head`: ``Y`` is int8 (n, n_concepts), 1 positive, 0 negative,
-1 unknown. A row counts for a concept when its label there is known. As in training, an
input that is unknown (-1) for a concept but positive for another one is a negative for
it (an input labeled only "spam" is not "ham"): see `known_labels`. Rows with no positive
and no negative for a concept are left out of that concept's numbers.

Every number is scikit-learn's on the same predictions (`roc_auc_score`,
`precision_recall_fscore_support` with ``zero_division=0``, `confusion_matrix`,
`accuracy_score`); counts are computed directly so the UI's threshold slider can redo
them from the per-input probabilities with the same arithmetic.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

from classifier import linear
from classifier.head import ConceptHead
from classifier.hybrid import HybridHead

MAX_CURVE_POINTS = 101
CALIBRATION_BINS = 10


def known_labels(Y: np.ndarray) -> np.ndarray:
    """Labels with the negatives training implies: -1 becomes 0 on rows positive elsewhere."""
    Y = np.asarray(Y).astype(np.int8)
    implied = (Y == -1) & (Y == 1).any(axis=1, keepdims=True)
    return np.where(implied, np.int8(0), Y)


def cross_val_proba(
    head: ConceptHead | HybridHead,
    X: np.ndarray,
    Y: np.ndarray,
    folds: int = 5,
    random_state: int = 0,
    progress: Callable[[int, int], None] | None = None,
    texts: Sequence[str] | None = None,
) -> tuple[np.ndarray, int, str]:
    """Out-of-fold probabilities (n, n_concepts), the number of folds used, and a note.

    Each row is scored by a clone of `head` fitted on the other folds only. Folds are
    stratified on each row's rarest label group (a concept's positives, or for one-vs-rest
    without background also its negatives), and reduced, down to 2, when a group has fewer
    members than `folds`; the note then says why, else it is "". `progress(done, folds)`
    is called after each fold. A `HybridHead` also needs the `texts` of the rows; each
    fold's clone learns its vocabulary from that fold's training texts only.
    """
    X = linear.as_features(X)
    Y = known_labels(Y)
    concepts = list(head.concepts)
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    if isinstance(head, HybridHead) and (texts is None or len(texts) != len(X)):
        raise ValueError("a hybrid head needs the text of every row")
    if X.ndim != 2 or Y.shape != (len(X), len(concepts)):
        raise ValueError(
            f"expected X of shape (n, dims) and Y of shape (n, {len(concepts)}), "
            f"got {X.shape} and {Y.shape}"
        )

    # Each group needs a member in every training set; the rarest one limits the folds.
    groups: list[tuple[str, str, np.ndarray]] = [
        (concept, "positive", Y[:, j] == 1) for j, concept in enumerate(concepts)
    ]
    has_background = head.background is not None and len(head.background) > 0
    if not head.mutually_exclusive and not has_background:
        groups += [(concept, "negative", Y[:, j] == 0) for j, concept in enumerate(concepts)]
    sizes = np.array([mask.sum() for _, _, mask in groups])
    rarest = int(np.argmin(sizes))
    smallest = int(sizes[rarest])
    concept, kind, _ = groups[rarest]
    if smallest < 2:
        raise ValueError(
            f"cross-validation needs at least 2 {kind} examples of each concept: "
            f"concept {concept!r} has {smallest}"
        )
    used = min(folds, smallest)
    note = ""
    if used < folds:
        note = f"{used} folds instead of {folds}: concept {concept!r} has only {smallest} "
        note += f"{kind} examples"

    # Stratify on the smallest group each row belongs to; rows in none share one key.
    membership = np.column_stack([mask for _, _, mask in groups])
    key = np.where(
        membership.any(axis=1),
        np.argmin(np.where(membership, sizes, np.iinfo(sizes.dtype).max), axis=1),
        -1,
    )
    splitter = StratifiedKFold(used, shuffle=True, random_state=random_state)
    fold_texts = np.asarray(list(texts or []), dtype=object)
    P = np.zeros(Y.shape, dtype=np.float64)
    with warnings.catch_warnings():
        # Rows without labels, or keyed below their group's size, form small strata.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(splitter.split(X, key))
    for done, (train, test) in enumerate(splits, start=1):
        if isinstance(head, HybridHead):
            fitted = clone(head).fit(fold_texts[train], X[train], Y[train])
            P[test] = fitted.predict_proba(fold_texts[test], X[test])
        else:
            P[test] = clone(head).fit(X[train], Y[train]).predict_proba(X[test])
        if progress is not None:
            progress(done, used)
    return P, used, note


def counts_at(Y: np.ndarray, P: np.ndarray, threshold: float = 0.5) -> list[dict[str, Any]]:
    """Per concept, at `threshold`: labeled, predicted, TP, FP, FN, TN, precision, recall, F1."""
    Y, P = _check(Y, P)
    results = []
    for j in range(Y.shape[1]):
        known = Y[:, j] != -1
        y = Y[known, j] == 1
        predicted = P[known, j] >= threshold
        tp = int(np.sum(y & predicted))
        fp = int(np.sum(~y & predicted))
        fn = int(np.sum(y & ~predicted))
        tn = int(np.sum(~y & ~predicted))
        results.append(
            {
                "n": int(known.sum()),
                "labeled": tp + fn,
                "predicted": tp + fp,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "tn": tn,
                # zero_division=0, as scikit-learn
                "precision": tp / (tp + fp) if tp + fp else 0.0,
                "recall": tp / (tp + fn) if tp + fn else 0.0,
                "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
            }
        )
    return results


def threshold_sweep(Y: np.ndarray, P: np.ndarray, steps: int = 100) -> list[dict[str, list[int]]]:
    """Per concept, TP, FP and FN at each threshold k / `steps` for k = 0..steps.

    The same comparison (probability >= threshold) as `counts_at`, so the UI's slider
    shows exactly what a recomputation at that threshold would.
    """
    Y, P = _check(Y, P)
    thresholds = np.arange(steps + 1) / steps
    sweep = []
    for j in range(Y.shape[1]):
        known = Y[:, j] != -1
        y, p = Y[known, j] == 1, P[known, j]
        predicted = p[None, :] >= thresholds[:, None]  # (steps + 1, n)
        tp = (predicted & y).sum(axis=1)
        fp = (predicted & ~y).sum(axis=1)
        sweep.append({"tp": tp.tolist(), "fp": fp.tolist(), "fn": (int(y.sum()) - tp).tolist()})
    return sweep


def threshold_for_precision(counts: dict[str, list[int]], target: float) -> float | None:
    """The lowest swept threshold whose precision reaches `target` (with at least one
    prediction), from one concept of `threshold_sweep`; None if none does."""
    steps = len(counts["tp"]) - 1
    for k, (tp, fp) in enumerate(zip(counts["tp"], counts["fp"], strict=True)):
        if tp and tp / (tp + fp) >= target:
            return k / steps
    return None


def evaluate(
    Y: np.ndarray,
    P: np.ndarray,
    concepts: Sequence[str],
    threshold: float = 0.5,
    mutually_exclusive: bool = False,
) -> dict[str, Any]:
    """Metrics as plain data (see the module docstring for which rows count).

    Returns ``{"threshold", "mutually_exclusive", "concepts": [per concept: "concept", "n",
    "labeled", "predicted", "tp", "fp", "fn", "tn", "precision", "recall", "f1", "roc_auc",
    "roc_curve": [[fpr, tpr], ...], "pr_curve": [[recall, precision], ...], "confusion":
    {"counts": [[tn, fp], [fn, tp]], "mean_probability": 2x2}], "summary": {"n_rows",
    "macro_roc_auc", "macro_precision", "macro_recall", "macro_f1", "accuracy"},
    "confusion_matrix": {"labels", "counts", "mean_probability", "rows"}}``.
    """
    Y, P = _check(Y, P)
    concepts = list(concepts)
    if len(concepts) != Y.shape[1]:
        raise ValueError(f"got {len(concepts)} concept names for {Y.shape[1]} label columns")
    per_concept = []
    for j, (concept, counts) in enumerate(zip(concepts, counts_at(Y, P, threshold), strict=True)):
        known = Y[:, j] != -1
        y, p = Y[known, j] == 1, P[known, j]
        entry: dict[str, Any] = {"concept": concept, **counts}
        if 0 < y.sum() < len(y):
            entry["roc_auc"] = float(roc_auc_score(y, p))
            fpr, tpr, _ = roc_curve(y, p)
            precision, recall, _ = precision_recall_curve(y, p)
            entry["roc_curve"] = _points(fpr, tpr)
            entry["pr_curve"] = _points(recall, precision)
        else:
            entry.update(roc_auc=None, roc_curve=[], pr_curve=[])
        predicted = p >= threshold
        entry["confusion"] = {
            "counts": [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]],
            # mean probability of the concept in each cell
            "mean_probability": [
                [_mean(p[~y & ~predicted]), _mean(p[~y & predicted])],
                [_mean(p[y & ~predicted]), _mean(p[y & predicted])],
            ],
        }
        per_concept.append(entry)

    aucs = [c["roc_auc"] for c in per_concept if c["roc_auc"] is not None]
    summary: dict[str, Any] = {
        "n_rows": int((Y != -1).any(axis=1).sum()),
        "macro_roc_auc": float(np.mean(aucs)) if aucs else None,
        "macro_precision": float(np.mean([c["precision"] for c in per_concept])),
        "macro_recall": float(np.mean([c["recall"] for c in per_concept])),
        "macro_f1": float(np.mean([c["f1"] for c in per_concept])),
        "accuracy": None,
    }
    matrix = _confusion_matrix(Y, P, concepts, mutually_exclusive)
    if mutually_exclusive:
        total = int(np.sum(matrix["counts"]))
        correct = int(np.trace(np.array(matrix["counts"])))
        summary["accuracy"] = correct / total if total else None
    return {
        "threshold": float(threshold),
        "mutually_exclusive": bool(mutually_exclusive),
        "concepts": per_concept,
        "summary": summary,
        "confusion_matrix": matrix,
    }


def most_confident_mistakes(
    Y: np.ndarray,
    P: np.ndarray,
    concepts: Sequence[str],
    limit: int = 20,
    threshold: float = 0.5,
    mutually_exclusive: bool = False,
) -> list[dict[str, Any]]:
    """Known labels the probabilities get wrong at `threshold`, the most wrong first.

    How wrong is the distance between label and probability (a positive at 0.02 before a
    negative at 0.9). Each is ``{"row", "concept", "label", "probability"}``. With
    mutually exclusive concepts a mistake is a row whose most probable concept is not its
    own: listed once, by its own concept's probability, lowest first, with the
    ``"predicted"`` concept.
    """
    Y, P = _check(Y, P)
    if mutually_exclusive:
        return _exclusive_mistakes(Y, P, concepts, limit)
    rows, columns = np.nonzero(Y != -1)
    labels = Y[rows, columns]
    probabilities = P[rows, columns]
    wrong = np.where(labels == 1, probabilities < threshold, probabilities >= threshold)
    rows, columns, labels, probabilities = (
        a[wrong] for a in (rows, columns, labels, probabilities)
    )
    # lexsort: last key is primary; ties keep row then concept order
    order = np.lexsort((columns, rows, -np.abs(labels - probabilities)))[:limit]
    return [
        {
            "row": int(rows[i]),
            "concept": concepts[columns[i]],
            "label": int(labels[i]),
            "probability": float(probabilities[i]),
        }
        for i in order
    ]


def _exclusive_mistakes(
    Y: np.ndarray, P: np.ndarray, concepts: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    rows = np.flatnonzero((Y == 1).any(axis=1))
    own = (Y[rows] == 1).argmax(axis=1)
    predicted = P[rows].argmax(axis=1)
    wrong = own != predicted
    rows, own, predicted = rows[wrong], own[wrong], predicted[wrong]
    probabilities = P[rows, own]
    order = np.lexsort((rows, probabilities))[:limit]
    return [
        {
            "row": int(rows[i]),
            "concept": concepts[own[i]],
            "label": 1,
            "probability": float(probabilities[i]),
            "predicted": concepts[predicted[i]],
        }
        for i in order
    ]


def calibration(Y: np.ndarray, P: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Expected calibration error and a reliability diagram, over every known label.

    Each (row, concept) with a known label is one prediction: its probability and whether
    it was positive. Predictions are put in `bins` equal-width bins of probability; the
    error is the mean gap between a bin's mean probability and its share of positives,
    weighted by the bin's size. The diagram lists, per non-empty bin, the mean
    probability, the share of positives and the count.
    """
    Y, P = _check(Y, P)
    known = Y != -1
    p, y = P[known], (Y[known] == 1).astype(np.float64)
    if len(p) == 0:
        return {"ece": None, "bins": []}
    which = np.minimum((p * bins).astype(int), bins - 1)
    diagram, gap = [], 0.0
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        if n:
            confidence, observed = float(p[inside].mean()), float(y[inside].mean())
            gap += n * abs(confidence - observed)
            diagram.append({"confidence": confidence, "observed": observed, "count": n})
    return {"ece": gap / len(p), "bins": diagram}


def _check(Y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Y, P = np.asarray(Y), np.asarray(P, dtype=np.float64)
    if Y.ndim != 2 or Y.shape != P.shape:
        raise ValueError(f"labels and probabilities must have one shape, got {Y.shape}, {P.shape}")
    if not np.isin(Y, (-1, 0, 1)).all():
        raise ValueError("labels must be 1 (positive), 0 (negative) or -1 (unknown)")
    return known_labels(Y), P


def _confusion_matrix(
    Y: np.ndarray, P: np.ndarray, concepts: list[str], mutually_exclusive: bool
) -> dict[str, Any]:
    """Actual concept (a positive label) x predicted concept (the highest probability).

    For one-vs-rest models an input with several positive concepts counts once in each
    of their rows; mutually exclusive labels may have only one.
    """
    positives = (Y == 1).sum(axis=1)
    if mutually_exclusive and (positives > 1).any():
        raise ValueError("mutually exclusive labels have at most one positive concept per input")
    rows, actual = np.nonzero(Y == 1)
    predicted = np.argmax(P[rows], axis=1)
    k = len(concepts)
    counts = [[0] * k for _ in range(k)]
    means: list[list[float | None]] = [[None] * k for _ in range(k)]
    cells: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(k)]
    for a in range(k):
        for b in range(k):
            in_cell = (actual == a) & (predicted == b)
            counts[a][b] = int(in_cell.sum())
            means[a][b] = _mean(P[rows[in_cell], b])
            cells[a][b] = rows[in_cell].tolist()
    return {"labels": concepts, "counts": counts, "mean_probability": means, "rows": cells}


def _points(x: np.ndarray, y: np.ndarray) -> list[list[float]]:
    """Curve points, evenly thinned to at most MAX_CURVE_POINTS; both ends kept."""
    keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), MAX_CURVE_POINTS)).round().astype(int))
    return [[float(x[i]), float(y[i])] for i in keep]


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None
