import io
import json
import re

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from classifier.embedders import Embedder
from classifier.enrich import background_texts
from classifier.head import (
    C_CANDIDATES,
    DEFAULT_C,
    FORMAT_VERSION,
    ConceptHead,
    HeadFormatError,
    TrainingError,
    prefer_default,
)

from .conftest import SpamHam, one_concept_labels


@pytest.fixture(scope="module")
def background(embedder: Embedder) -> np.ndarray:
    """A quarter of the Enrich corpus: enough to show its effect, quick to embed."""
    return embedder.encode(background_texts()[::4])


def accuracy(head: ConceptHead, data: SpamHam) -> float:
    return float(np.mean(head.predict_proba(data.X_test).argmax(axis=1) == data.y_test))


@pytest.mark.parametrize("exclusive", [False, True])
def test_it_classifies_held_out_texts(spam_ham: SpamHam, exclusive: bool) -> None:
    head = ConceptHead(["spam", "ham"], mutually_exclusive=exclusive)
    assert head.fit(spam_ham.X_train, spam_ham.Y_train) is head
    assert accuracy(head, spam_ham) == 1.0
    p = head.predict_proba(spam_ham.X_test)
    assert p.shape == (12, 2)
    assert (p[spam_ham.y_test == 0, 0] > 0.7).all()  # confident on obvious spam


def test_exclusive_probabilities_sum_to_one(spam_ham: SpamHam) -> None:
    head = ConceptHead(["spam", "ham"], mutually_exclusive=True).fit(
        spam_ham.X_train, spam_ham.Y_train
    )
    p = head.predict_proba(np.vstack([spam_ham.X_test, spam_ham.X_off_topic]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_exclusive_handles_three_concepts(embedder: Embedder) -> None:
    texts = {
        "sport": ["The team won the match 3-1.", "She ran the marathon in record time.",
                  "The striker scored twice.", "Tennis final goes to five sets."],
        "food": ["Add the garlic and fry gently.", "This soup needs more salt.",
                 "Bake the bread for forty minutes.", "The pasta was delicious."],
        "tech": ["My laptop will not boot.", "Update the router firmware.",
                 "The app crashes on start.", "Reset your password online."],
    }  # fmt: skip
    X = embedder.encode([t for group in texts.values() for t in group])
    Y = one_concept_labels(np.repeat([0, 1, 2], 4), 3)
    head = ConceptHead(list(texts), mutually_exclusive=True).fit(X, Y)
    p = head.predict_proba(embedder.encode(["The goalkeeper saved a penalty.", "Whisk the eggs."]))
    assert p.argmax(axis=1).tolist() == [0, 1]
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_one_vs_rest_probabilities_are_independent(
    spam_ham: SpamHam, background: np.ndarray
) -> None:
    # Without background the two binary problems mirror each other exactly (every spam is
    # a ham negative and vice versa), so it takes Enrich to show "none of these".
    head = ConceptHead(["spam", "ham"], background=background)
    head.fit(spam_ham.X_train, spam_ham.Y_train)
    sums = head.predict_proba(spam_ham.X_off_topic).sum(axis=1)
    assert (sums < 0.6).all()


def test_inputs_positive_for_another_concept_are_negatives(spam_ham: SpamHam) -> None:
    head = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train, spam_ham.Y_train)
    assert "'spam': 12 positive, 12 negative" in head.fit_log_
    assert "'ham': 12 positive, 12 negative" in head.fit_log_


def test_it_uses_negative_labels(spam_ham: SpamHam) -> None:
    # A single concept: the ham inputs are negatives only because they say so.
    Y = np.where(spam_ham.y_train == 0, 1, 0).astype(np.int8)[:, None]
    head = ConceptHead(["spam"]).fit(spam_ham.X_train, Y)
    p = head.predict_proba(spam_ham.X_test)[:, 0]
    assert (p[spam_ham.y_test == 0] > 0.5).all()
    assert (p[spam_ham.y_test == 1] < 0.5).all()
    # Without them there is nothing to learn from.
    unknown = np.where(Y == 1, 1, -1).astype(np.int8)
    with pytest.raises(TrainingError):
        ConceptHead(["spam"]).fit(spam_ham.X_train, unknown)


def test_it_ignores_unlabeled_inputs(spam_ham: SpamHam) -> None:
    Y = spam_ham.Y_train.copy()
    Y[:3] = -1
    head = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train, Y)
    assert "ignored 3 inputs with no label" in head.fit_log_
    assert "'spam': 9 positive, 12 negative" in head.fit_log_


@pytest.mark.parametrize("exclusive", [False, True])
def test_it_requires_positives(spam_ham: SpamHam, exclusive: bool) -> None:
    Y = spam_ham.Y_train.copy()
    Y[:, 1] = np.where(Y[:, 1] == 1, 0, Y[:, 1])
    with pytest.raises(TrainingError, match=r"^concept 'ham' has no positive examples$"):
        ConceptHead(["spam", "ham"], mutually_exclusive=exclusive).fit(spam_ham.X_train, Y)


def test_it_requires_negatives_in_one_vs_rest(spam_ham: SpamHam) -> None:
    Y = np.ones((len(spam_ham.X_train), 1), dtype=np.int8)
    message = (
        "concept 'spam' has no negative examples: label some inputs as not spam "
        "or enable Enrich dataset"
    )
    with pytest.raises(TrainingError, match=f"^{re.escape(message)}$"):
        ConceptHead(["spam"]).fit(spam_ham.X_train, Y)


def test_background_stands_in_for_negatives(spam_ham: SpamHam, background: np.ndarray) -> None:
    spam = spam_ham.y_train == 0
    head = ConceptHead(["spam"], background=background).fit(
        spam_ham.X_train[spam], np.ones((spam.sum(), 1), dtype=np.int8)
    )
    p = head.predict_proba(np.vstack([spam_ham.X_test, spam_ham.X_off_topic]))[:, 0]
    assert p[:6].min() > p[6:].max()  # held-out spam above held-out ham and off-topic texts


def test_exclusive_needs_two_concepts(spam_ham: SpamHam) -> None:
    with pytest.raises(TrainingError, match="at least 2 concepts"):
        ConceptHead(["spam"], mutually_exclusive=True).fit(
            spam_ham.X_train, spam_ham.Y_train[:, :1]
        )


def test_exclusive_rejects_inputs_with_two_concepts(spam_ham: SpamHam) -> None:
    Y = spam_ham.Y_train.copy()
    Y[[2, 5]] = 1
    with pytest.raises(TrainingError, match=r"2 inputs .* more than one .* \(rows 2, 5\)"):
        ConceptHead(["spam", "ham"], mutually_exclusive=True).fit(spam_ham.X_train, Y)


def test_exclusive_skips_inputs_without_a_positive(spam_ham: SpamHam) -> None:
    Y = spam_ham.Y_train.copy()
    Y[0] = [0, -1]
    Y[1] = [-1, -1]
    head = ConceptHead(["spam", "ham"], mutually_exclusive=True).fit(spam_ham.X_train, Y)
    assert "skipped 2 inputs with no positive concept" in head.fit_log_


def test_it_rejects_malformed_labels(spam_ham: SpamHam) -> None:
    head = ConceptHead(["spam", "ham"])
    with pytest.raises(ValueError, match="labels must be"):
        head.fit(spam_ham.X_train, spam_ham.Y_train * 2)
    with pytest.raises(ValueError, match="Y of shape"):
        head.fit(spam_ham.X_train, spam_ham.Y_train[:, :1])


def test_it_chooses_C_by_cross_validation(spam_ham: SpamHam) -> None:
    head = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train, spam_ham.Y_train)
    assert head.chosen_C_ in C_CANDIDATES
    assert f"C = {head.chosen_C_:g} (chosen by cross-validation)" in head.fit_log_
    assert any(line.startswith("5-fold cross-validation") for line in head.fit_log_)


def test_the_default_C_stays_unless_another_is_clearly_better() -> None:
    default = C_CANDIDATES.index(DEFAULT_C)
    per_fold = np.full((5, len(C_CANDIDATES)), 0.5)
    per_fold[:, 0] = [0.49, 0.52, 0.47, 0.51, 0.48]  # lower on average, within the noise
    assert prefer_default(per_fold) == default
    per_fold[:, 0] = [0.40, 0.42, 0.39, 0.41, 0.40]  # lower in every fold
    assert prefer_default(per_fold) == 0


def test_it_uses_the_default_C_with_little_data(spam_ham: SpamHam) -> None:
    rows = np.r_[0:4, 12:16]  # four of each: too few for 5 folds
    head = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train[rows], spam_ham.Y_train[rows])
    assert head.chosen_C_ == DEFAULT_C
    assert any("default" in line for line in head.fit_log_)


def test_a_rare_concept_does_not_leave_the_others_untuned(spam_ham: SpamHam) -> None:
    # A third concept on three inputs: too few to cross-validate, so C is chosen on the
    # two concepts that have enough examples and serves all three.
    Y = np.hstack([spam_ham.Y_train, np.full((len(spam_ham.Y_train), 1), -1, dtype=np.int8)])
    Y[:3, 2] = 1
    head = ConceptHead(["spam", "ham", "rare"]).fit(spam_ham.X_train, Y)
    assert f"C = {head.chosen_C_:g} (chosen by cross-validation)" in head.fit_log_
    assert any("on the 2 of 3 concepts with 5 examples" in line for line in head.fit_log_)
    assert head.cv_losses_ is not None


def test_many_classes_just_above_the_sample_size_train() -> None:
    # 610 inputs of 20 classes: sampling 600 for cross-validation would leave 10 rows,
    # too few to hold every class; the whole set is cross-validated instead.
    rng = np.random.default_rng(0)
    y = np.arange(610) % 20
    X = rng.normal(size=(610, 16)) + np.eye(20)[y, :16] * 3
    Y = np.where(np.eye(20, dtype=bool)[y], 1, -1).astype(np.int8)
    head = ConceptHead([f"c{i}" for i in range(20)], mutually_exclusive=True).fit(X, Y)
    assert any(line.startswith("5-fold cross-validation") for line in head.fit_log_)


def test_it_uses_a_given_C(spam_ham: SpamHam) -> None:
    head = ConceptHead(["spam", "ham"], C=0.5).fit(spam_ham.X_train, spam_ham.Y_train)
    assert head.chosen_C_ == 0.5


def test_balanced_class_weight_trains(spam_ham: SpamHam) -> None:
    rows = np.r_[0:12, 12:18]  # twice as much spam as ham
    head = ConceptHead(["spam", "ham"], mutually_exclusive=True, class_weight="balanced")
    head.fit(spam_ham.X_train[rows], spam_ham.Y_train[rows])
    assert accuracy(head, spam_ham) == 1.0


@pytest.mark.parametrize("exclusive", [False, True])
def test_it_round_trips_exactly(spam_ham: SpamHam, exclusive: bool) -> None:
    head = ConceptHead(["spam", "ham"], mutually_exclusive=exclusive).fit(
        spam_ham.X_train, spam_ham.Y_train
    )
    expected = head.predict_proba(spam_ham.X_test)
    for copy in (ConceptHead.loads(head.dumps()), ConceptHead.from_arrays(head.to_arrays())):
        assert np.array_equal(copy.predict_proba(spam_ham.X_test), expected)
        assert list(copy.concepts) == ["spam", "ham"]
        assert copy.mutually_exclusive is exclusive
        assert copy.chosen_C_ == head.chosen_C_
        assert copy.fit_log_ == head.fit_log_
    arrays = head.to_arrays()
    json.dumps({k: v for k, v in arrays.items() if k not in ("coef", "intercept")})
    assert arrays["format_version"] == FORMAT_VERSION


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_loads_rejects_other_format_versions(spam_ham: SpamHam) -> None:
    head = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train, spam_ham.Y_train)
    meta = {k: v for k, v in head.to_arrays().items() if k not in ("coef", "intercept")}
    for version in (FORMAT_VERSION + 1, None):
        meta["format_version"] = version
        data = npz_bytes(
            coef=head.coef_, intercept=head.intercept_, meta=np.array(json.dumps(meta))
        )
        with pytest.raises(HeadFormatError, match="format version"):
            ConceptHead.loads(data)
    del meta["format_version"]
    data = npz_bytes(coef=head.coef_, intercept=head.intercept_, meta=np.array(json.dumps(meta)))
    with pytest.raises(HeadFormatError, match="format version None"):
        ConceptHead.loads(data)


def test_loads_rejects_anything_else(spam_ham: SpamHam) -> None:
    with pytest.raises(HeadFormatError):
        ConceptHead.loads(b"not a head at all")
    with pytest.raises(HeadFormatError):
        ConceptHead.loads(npz_bytes(coef=np.zeros((2, 3))))
    # An object array would need pickle to load: refused, not run.
    with pytest.raises(HeadFormatError):
        ConceptHead.loads(npz_bytes(meta=np.array([{"format_version": 1}], dtype=object)))


def test_it_must_be_fitted_first(spam_ham: SpamHam) -> None:
    with pytest.raises(NotFittedError):
        ConceptHead(["spam"]).predict_proba(spam_ham.X_test)


def test_it_checks_the_embedding_size(spam_ham: SpamHam) -> None:
    head = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train, spam_ham.Y_train)
    with pytest.raises(ValueError, match=r"shape \(n, 384\)"):
        head.predict_proba(spam_ham.X_test[:, :100])


def test_background_lowers_off_topic_probabilities(
    spam_ham: SpamHam, background: np.ndarray
) -> None:
    plain = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train, spam_ham.Y_train)
    enriched = ConceptHead(["spam", "ham"], background=background).fit(
        spam_ham.X_train, spam_ham.Y_train
    )
    before = plain.predict_proba(spam_ham.X_off_topic).max(axis=1)
    after = enriched.predict_proba(spam_ham.X_off_topic).max(axis=1)
    # Without Enrich, "the weather is sunny in Paris today" must be spam or ham (>= 0.5).
    assert before.min() > 0.5
    assert after.max() < 0.35
    assert (after < before - 0.25).all()
    assert accuracy(enriched, spam_ham) == 1.0
    assert any(line.startswith("Enrich: 296 background texts") for line in enriched.fit_log_)


def test_background_does_nothing_for_exclusive_heads(
    spam_ham: SpamHam, background: np.ndarray
) -> None:
    plain = ConceptHead(["spam", "ham"], mutually_exclusive=True)
    enriched = ConceptHead(["spam", "ham"], mutually_exclusive=True, background=background)
    plain.fit(spam_ham.X_train, spam_ham.Y_train)
    enriched.fit(spam_ham.X_train, spam_ham.Y_train)
    X = spam_ham.X_off_topic
    assert np.array_equal(enriched.predict_proba(X), plain.predict_proba(X))
    assert any("background texts not used" in line for line in enriched.fit_log_)


@pytest.mark.parametrize("exclusive", [False, True])
def test_it_is_as_accurate_as_plain_logistic_regression(spam_ham: SpamHam, exclusive: bool) -> None:
    # Train on the held-out texts and test on the training texts: a second small split.
    X_train, y_train = spam_ham.X_test, spam_ham.y_test
    X_test, y_test = spam_ham.X_train, spam_ham.y_train
    raw = LogisticRegression().fit(X_train, y_train)
    raw_accuracy = np.mean(raw.predict(X_test) == y_test)
    head = ConceptHead(["spam", "ham"], mutually_exclusive=exclusive)
    head.fit(X_train, one_concept_labels(y_train, 2))
    head_accuracy = np.mean(head.predict_proba(X_test).argmax(axis=1) == y_test)
    assert head_accuracy >= raw_accuracy - 1 / len(y_test)
