import json

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from classifier.evaluation import (
    MAX_CURVE_POINTS,
    counts_at,
    cross_val_proba,
    evaluate,
    known_labels,
    most_confident_mistakes,
    threshold_for_precision,
    threshold_sweep,
)
from classifier.head import ConceptHead

from .conftest import SpamHam, one_concept_labels

CONCEPTS = ["spam", "ham", "news"]


def random_one_vs_rest(seed: int, n: int = 300, unknown: float = 0.3):
    rng = np.random.default_rng(seed)
    Y = rng.integers(0, 2, size=(n, 3)).astype(np.int8)
    Y[rng.random((n, 3)) < unknown] = -1
    # Probabilities that lean towards the labels, so the metrics are not all ~0.5.
    P = np.clip(0.35 * (Y == 1) + 0.65 * rng.random((n, 3)), 0, 1)
    return Y, P


def random_exclusive(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    P = softmax(rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y], axis=1)
    return y, P


def assert_matches_scikit_learn(entry: dict, y: np.ndarray, p: np.ndarray, threshold: float):
    predicted = p >= threshold
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, average="binary", zero_division=0
    )
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    assert (entry["tn"], entry["fp"], entry["fn"], entry["tp"]) == (tn, fp, fn, tp)
    assert entry["labeled"] == y.sum()
    assert entry["predicted"] == predicted.sum()
    assert entry["n"] == len(y)
    assert entry["precision"] == pytest.approx(precision)
    assert entry["recall"] == pytest.approx(recall)
    assert entry["f1"] == pytest.approx(f1)
    assert entry["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert entry["confusion"]["counts"] == [[tn, fp], [fn, tp]]
    assert entry["confusion"]["mean_probability"][1][1] == pytest.approx(
        p[(y == 1) & predicted].mean()
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_it_matches_scikit_learn_one_vs_rest(seed: int, threshold: float) -> None:
    Y, P = random_one_vs_rest(seed)
    report = evaluate(Y, P, CONCEPTS, threshold=threshold)
    K = known_labels(Y)
    for j, entry in enumerate(report["concepts"]):
        assert entry["concept"] == CONCEPTS[j]
        known = K[:, j] != -1
        assert_matches_scikit_learn(entry, K[known, j], P[known, j], threshold)
    summary = report["summary"]
    assert summary["macro_roc_auc"] == pytest.approx(
        np.mean([c["roc_auc"] for c in report["concepts"]])
    )
    assert summary["macro_f1"] == pytest.approx(np.mean([c["f1"] for c in report["concepts"]]))
    assert summary["accuracy"] is None
    # Each positive label counts once, in the column of the highest probability.
    matrix = report["confusion_matrix"]
    rows, actual = np.nonzero(K == 1)
    assert np.sum(matrix["counts"]) == len(rows)
    expected = confusion_matrix(actual, P[rows].argmax(axis=1), labels=range(len(CONCEPTS)))
    assert matrix["counts"] == expected.tolist()


def test_macro_averages_match_scikit_learn_when_every_label_is_known() -> None:
    Y, P = random_one_vs_rest(3, unknown=0.0)
    report = evaluate(Y, P, CONCEPTS)
    precision, recall, f1, _ = precision_recall_fscore_support(
        Y, (P >= 0.5).astype(int), average="macro", zero_division=0
    )
    summary = report["summary"]
    assert summary["macro_precision"] == pytest.approx(precision)
    assert summary["macro_recall"] == pytest.approx(recall)
    assert summary["macro_f1"] == pytest.approx(f1)
    assert summary["macro_roc_auc"] == pytest.approx(roc_auc_score(Y, P, average="macro"))


@pytest.mark.parametrize("seed", [0, 1])
def test_it_matches_scikit_learn_mutually_exclusive(seed: int) -> None:
    y, P = random_exclusive(seed)
    Y = one_concept_labels(y, 3)
    report = evaluate(Y, P, CONCEPTS, mutually_exclusive=True)
    for j, entry in enumerate(report["concepts"]):
        assert_matches_scikit_learn(entry, (y == j).astype(int), P[:, j], 0.5)

    predicted = P.argmax(axis=1)
    assert report["summary"]["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    matrix = report["confusion_matrix"]
    assert matrix["labels"] == CONCEPTS
    assert matrix["counts"] == confusion_matrix(y, predicted, labels=[0, 1, 2]).tolist()
    for a in range(3):
        for b in range(3):
            cell = np.flatnonzero((y == a) & (predicted == b))
            assert matrix["rows"][a][b] == cell.tolist()
            if len(cell):
                assert matrix["mean_probability"][a][b] == pytest.approx(P[cell, b].mean())
            else:
                assert matrix["mean_probability"][a][b] is None


def test_it_is_plain_json_with_small_curves() -> None:
    y, P = random_exclusive(4, n=2000)
    report = evaluate(one_concept_labels(y, 3), P, CONCEPTS, mutually_exclusive=True)
    assert json.loads(json.dumps(report, allow_nan=False)) == report

    entry = report["concepts"][0]
    fpr, tpr, _ = roc_curve(y == 0, P[:, 0])
    precision, recall, _ = precision_recall_curve(y == 0, P[:, 0])
    assert len(fpr) > MAX_CURVE_POINTS
    assert 2 <= len(entry["roc_curve"]) <= MAX_CURVE_POINTS
    assert entry["roc_curve"][0] == [fpr[0], tpr[0]]
    assert entry["roc_curve"][-1] == [1.0, 1.0]
    assert entry["pr_curve"][0] == [recall[0], precision[0]]
    assert entry["pr_curve"][-1] == [0.0, 1.0]
    assert len(entry["pr_curve"]) <= MAX_CURVE_POINTS


def test_it_ignores_unknown_labels_per_concept() -> None:
    Y, P = random_one_vs_rest(5, unknown=0.0)
    report = evaluate(Y, P, CONCEPTS)

    # Unlabeled rows, and rows unknown for "news" with no positive anywhere, change nothing.
    rng = np.random.default_rng(0)
    extra_Y = np.array([[-1, -1, -1]] * 20 + [[0, 0, -1]] * 20, dtype=np.int8)
    extra_P = rng.random((40, 3))
    extra_P[20:, :2] = 0.0  # true negatives for spam and ham
    padded = evaluate(np.vstack([Y, extra_Y]), np.vstack([P, extra_P]), CONCEPTS)
    news, padded_news = report["concepts"][2], padded["concepts"][2]
    assert padded_news == news
    assert padded["concepts"][0]["tn"] == report["concepts"][0]["tn"] + 20
    assert padded["summary"]["n_rows"] == report["summary"]["n_rows"] + 20


def test_an_input_positive_for_one_concept_is_a_negative_for_the_others() -> None:
    Y = np.array([[1, -1], [1, -1], [-1, 1], [-1, -1]], dtype=np.int8)
    P = np.array([[0.9, 0.2], [0.4, 0.7], [0.1, 0.8], [0.9, 0.9]])
    assert known_labels(Y).tolist() == [[1, 0], [1, 0], [0, 1], [-1, -1]]
    ham = evaluate(Y, P, ["spam", "ham"])["concepts"][1]
    assert (ham["n"], ham["tp"], ham["fp"], ham["tn"], ham["fn"]) == (3, 1, 1, 1, 0)


def test_it_handles_a_concept_with_one_class() -> None:
    Y = np.array([[1, -1], [1, 0], [1, 0]], dtype=np.int8)
    P = np.array([[0.2, 0.1], [0.1, 0.1], [0.3, 0.1]])
    report = evaluate(Y, P, ["spam", "ham"])
    spam = report["concepts"][0]
    assert spam["roc_auc"] is None
    assert spam["roc_curve"] == spam["pr_curve"] == []
    assert (spam["precision"], spam["recall"], spam["f1"]) == (0.0, 0.0, 0.0)
    assert report["summary"]["macro_roc_auc"] is None


def test_counts_at_follow_the_threshold() -> None:
    Y = np.array([[1], [1], [0], [0]], dtype=np.int8)
    P = np.array([[0.9], [0.4], [0.6], [0.1]])
    assert counts_at(Y, P, 0.5)[0] | {"precision": 0, "recall": 0, "f1": 0} == {
        "n": 4,
        "labeled": 2,
        "predicted": 2,
        "tp": 1,
        "fp": 1,
        "fn": 1,
        "tn": 1,
        "precision": 0,
        "recall": 0,
        "f1": 0,
    }
    assert counts_at(Y, P, 0.3)[0]["recall"] == 1.0
    assert counts_at(Y, P, 0.95)[0]["predicted"] == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_the_sweep_equals_a_recount_at_every_threshold(seed: int) -> None:
    Y, P = random_one_vs_rest(seed)
    P[:10] = 0.5  # ties exactly at a step
    P[10:20] = 0.29
    sweep = threshold_sweep(Y, P)
    for k in range(101):
        for j, counts in enumerate(counts_at(Y, P, k / 100)):
            assert [sweep[j][key][k] for key in ("tp", "fp", "fn")] == [
                counts["tp"],
                counts["fp"],
                counts["fn"],
            ]


def test_threshold_for_precision_is_the_lowest_that_reaches_it() -> None:
    Y = np.array([[1], [1], [0], [1], [0]], dtype=np.int8)
    P = np.array([[0.95], [0.8], [0.7], [0.6], [0.2]])
    counts = threshold_sweep(Y, P)[0]
    assert threshold_for_precision(counts, 1.0) == 0.71
    assert threshold_for_precision(counts, 0.75) == 0.21
    Y[0, 0] = Y[1, 0] = Y[3, 0] = 0
    Y[4, 0] = 1
    assert threshold_for_precision(threshold_sweep(Y, P)[0], 0.9) is None


def test_it_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        evaluate(np.zeros((3, 2), dtype=np.int8), np.zeros((3, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="concept names"):
        evaluate(np.zeros((3, 2), dtype=np.int8), np.zeros((3, 2)), ["a"])


def test_most_confident_mistakes_come_most_wrong_first() -> None:
    Y = np.array([[1, 0], [0, 1], [1, -1], [0, 0]], dtype=np.int8)
    P = np.array([[0.02, 0.9], [0.3, 0.45], [0.8, 0.6], [0.55, 0.1]])
    mistakes = most_confident_mistakes(Y, P, ["spam", "ham"])
    assert [(m["row"], m["concept"], m["label"]) for m in mistakes] == [
        (0, "spam", 1),  # 0.98 wrong
        (0, "ham", 0),  # 0.9
        (2, "ham", 0),  # 0.6: unknown, but positive for spam
        (1, "ham", 1),  # 0.55
        (3, "spam", 0),  # 0.55, later row
    ]
    assert mistakes[0]["probability"] == 0.02
    assert len(most_confident_mistakes(Y, P, ["spam", "ham"], limit=2)) == 2


@pytest.mark.parametrize("exclusive", [False, True])
def test_cross_validation_never_scores_an_input_with_a_head_that_saw_it(exclusive: bool) -> None:
    # Each input has a feature of its own: a head that saw it recognises it (~1 or ~0), a
    # head that didn't can only give the class prior.
    n = 40
    X = np.eye(n)
    y = np.arange(n) % 2
    Y = one_concept_labels(y, 2)
    head = ConceptHead(["a", "b"], mutually_exclusive=exclusive, C=1000.0)
    seen = head.fit(X, Y).predict_proba(X)
    assert seen[np.arange(n), y].min() > 0.9
    assert seen[np.arange(n), 1 - y].max() < 0.1

    P, folds, note = cross_val_proba(head, X, Y)
    assert (folds, note) == (5, "")
    assert np.abs(P - 0.5).max() < 0.1


def test_cross_validation_reduces_folds_for_rare_concepts() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 8))
    y = np.array([0] * 3 + [1] * 27)
    head = ConceptHead(["spam", "ham"], mutually_exclusive=True)
    P, folds, note = cross_val_proba(head, X, one_concept_labels(y, 2))
    assert folds == 3
    assert note == "3 folds instead of 5: concept 'spam' has only 3 positive examples"
    assert P.shape == (30, 2)
    assert np.allclose(P.sum(axis=1), 1.0)


def test_cross_validation_counts_negatives_for_one_vs_rest() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 8))
    Y = np.full((12, 1), 1, dtype=np.int8)
    Y[:4] = 0
    _, folds, note = cross_val_proba(ConceptHead(["spam"]), X, Y)
    assert folds == 4
    assert note == "4 folds instead of 5: concept 'spam' has only 4 negative examples"


def test_cross_validation_refuses_a_single_example() -> None:
    X = np.random.default_rng(0).normal(size=(10, 4))
    y = np.array([0] + [1] * 9)
    with pytest.raises(ValueError, match="concept 'spam' has 1"):
        cross_val_proba(
            ConceptHead(["spam", "ham"], mutually_exclusive=True), X, one_concept_labels(y, 2)
        )


@pytest.mark.parametrize("exclusive", [False, True])
def test_it_evaluates_real_embeddings(spam_ham: SpamHam, exclusive: bool) -> None:
    head = ConceptHead(list(spam_ham.concepts), mutually_exclusive=exclusive)
    P, folds, note = cross_val_proba(head, spam_ham.X_train, spam_ham.Y_train)
    assert (folds, note) == (5, "")
    report = evaluate(spam_ham.Y_train, P, spam_ham.concepts, mutually_exclusive=exclusive)
    assert report["summary"]["macro_roc_auc"] > 0.9
    assert report["summary"]["macro_f1"] > 0.8
    for entry in report["concepts"]:
        assert (entry["n"], entry["labeled"]) == (24, 12)
    if exclusive:
        assert report["summary"]["accuracy"] > 0.8
        assert np.sum(report["confusion_matrix"]["counts"]) == 24


def test_an_exclusive_mistake_is_listed_once_with_what_it_was_taken_for() -> None:
    Y = np.array([[1, -1], [-1, 1], [1, -1], [-1, 1]])
    P = np.array([[0.9, 0.1], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    mistakes = most_confident_mistakes(Y, P, ["spam", "ham"], mutually_exclusive=True)
    assert mistakes == [
        {"row": 1, "concept": "ham", "label": 1, "probability": 0.3, "predicted": "spam"},
        {"row": 2, "concept": "spam", "label": 1, "probability": 0.4, "predicted": "ham"},
    ]
    assert len(most_confident_mistakes(Y, P, ["spam", "ham"])) == 4  # per label: twice each
