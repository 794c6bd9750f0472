import io
import json

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold

from classifier.embedders import Embedder
from classifier.enrich import background_texts
from classifier.evaluation import calibration, cross_val_proba
from classifier.head import ConceptHead, HeadFormatError
from classifier.hybrid import FORMAT_VERSION, HybridHead, choose_features

from .conftest import HAM_TEST, HAM_TRAIN, OFF_TOPIC, SPAM_TEST, SPAM_TRAIN, SpamHam

TRAIN = SPAM_TRAIN + HAM_TRAIN
TEST = SPAM_TEST + HAM_TEST


def fitted(spam_ham: SpamHam, **params) -> HybridHead:
    head = HybridHead(["spam", "ham"], **params)
    return head.fit(TRAIN, spam_ham.X_train, spam_ham.Y_train)


@pytest.mark.parametrize("features", ["hybrid", "auto", "embedding"])
@pytest.mark.parametrize("exclusive", [False, True])
def test_it_classifies_held_out_texts(spam_ham: SpamHam, features: str, exclusive: bool) -> None:
    head = fitted(spam_ham, features=features, mutually_exclusive=exclusive)
    p = head.predict_proba(TEST, spam_ham.X_test)
    assert p.shape == (len(TEST), 2)
    assert np.mean(p.argmax(axis=1) == spam_ham.y_test) == 1.0
    if exclusive:
        np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_a_loaded_head_gives_identical_probabilities(spam_ham: SpamHam) -> None:
    head = fitted(spam_ham, features="hybrid")
    data = head.dumps()
    loaded = HybridHead.loads(data)
    texts = [*TEST, *OFF_TOPIC, "a word never seen in training: xylophone"]
    X = np.vstack([spam_ham.X_test, spam_ham.X_off_topic, spam_ham.X_test[:1]])
    assert np.array_equal(loaded.predict_proba(texts, X), head.predict_proba(texts, X))
    assert loaded.features_ == "hybrid"
    assert loaded.fit_log_ == head.fit_log_
    # Plain arrays only: loading never needs pickle.
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert npz["vocabulary"].dtype.kind == "U"
        assert len(npz["vocabulary"]) == len(npz["idf"]) > 100
        assert json.loads(str(npz["meta"].item()))["format_version"] == FORMAT_VERSION


def test_its_tfidf_columns_are_scikit_learns(spam_ham: SpamHam) -> None:
    head = fitted(spam_ham, features="hybrid")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(TRAIN)
    features = head.transform(TEST, spam_ham.X_test)
    dims = spam_ham.X_test.shape[1]
    np.testing.assert_allclose(features[:, dims:].toarray(), vectorizer.transform(TEST).toarray())
    np.testing.assert_allclose(features[:, :dims].toarray(), 2.0 * spam_ham.X_test)


def test_many_concepts_keep_the_most_frequent_terms(
    spam_ham: SpamHam, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("classifier.hybrid.MAX_WORD_WEIGHTS", 60)
    head = fitted(spam_ham, features="hybrid")  # two one-vs-rest concepts: 30 terms each
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=30)
    assert list(head.vocabulary_) == list(vectorizer.fit(TRAIN).get_feature_names_out())
    exclusive = fitted(spam_ham, features="hybrid", mutually_exclusive=True)
    assert len(exclusive.vocabulary_) == 60  # a binary softmax: one weight vector in all


def test_auto_logs_what_it_picked_and_why(spam_ham: SpamHam) -> None:
    head = fitted(spam_ham, features="auto")
    assert head.features_ in ("embedding", "hybrid")
    last = head.fit_log_[-1]
    assert last.startswith("features: ")
    assert "Auto: cross-validated log loss" in last
    assert "C = " in " ".join(head.fit_log_)


def test_auto_keeps_the_embedding_when_it_cannot_cross_validate(spam_ham: SpamHam) -> None:
    rows = [0, 1, 2, 12, 13, 14]  # 3 spam, 3 ham: below the 5 per class CV needs
    head = HybridHead(["spam", "ham"]).fit(
        [TRAIN[i] for i in rows], spam_ham.X_train[rows], spam_ham.Y_train[rows]
    )
    assert head.features_ == "embedding"
    assert "too few examples to cross-validate" in head.fit_log_[-1]
    assert len(head.vocabulary_) == 0
    loaded = HybridHead.loads(head.dumps())
    ref = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train[rows], spam_ham.Y_train[rows])
    np.testing.assert_allclose(
        loaded.predict_proba(TEST, spam_ham.X_test), ref.predict_proba(spam_ham.X_test)
    )


@pytest.mark.parametrize("features", ["auto", "hybrid"])
def test_texts_without_words_fall_back_to_the_embedding(spam_ham: SpamHam, features: str) -> None:
    texts = ["!", "?"] * 12  # no token of two or more letters: TF-IDF has nothing to count
    head = HybridHead(["spam", "ham"], features=features)
    head.fit(texts, spam_ham.X_train, spam_ham.Y_train)
    assert head.features_ == "embedding"
    assert "no words for TF-IDF" in head.fit_log_[-1]
    p = HybridHead.loads(head.dumps()).predict_proba(TEST, spam_ham.X_test)
    assert np.mean(p.argmax(axis=1) == spam_ham.y_test) == 1.0


def test_choose_features_prefers_the_hybrid_unless_clearly_worse() -> None:
    embedding = np.array([0.30, 0.32, 0.28, 0.31, 0.29])
    assert choose_features(embedding, embedding + 0.01 * np.array([1, -1, 1, -1, 0]))[0] == (
        "hybrid"
    )
    assert choose_features(embedding, embedding + 0.1)[0] == "embedding"
    assert choose_features(embedding, embedding - 0.1)[0] == "hybrid"
    assert choose_features(None, None)[0] == "embedding"


def test_it_uses_background_texts_as_negatives(embedder: Embedder, spam_ham: SpamHam) -> None:
    texts = background_texts()[::8]
    head = fitted(
        spam_ham, features="hybrid", background=embedder.encode(texts), background_texts=texts
    )
    assert any("background texts as extra negatives" in line for line in head.fit_log_)
    assert np.median(head.predict_proba(OFF_TOPIC, spam_ham.X_off_topic).max(axis=1)) < 0.5
    with pytest.raises(ValueError, match="background_texts"):
        fitted(spam_ham, features="hybrid", background=embedder.encode(texts))


def test_cross_validation_fits_each_fold_on_its_training_texts_only(spam_ham: SpamHam) -> None:
    head = HybridHead(["spam", "ham"], mutually_exclusive=True, features="hybrid", C=10.0)
    P, folds, _ = cross_val_proba(head, spam_ham.X_train, spam_ham.Y_train, texts=TRAIN)
    # The same folds, fitted by hand on the training rows' texts only.
    texts = np.array(TRAIN, dtype=object)
    expected = np.zeros_like(P)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=0)
    for train, test in splitter.split(spam_ham.X_train, spam_ham.y_train):
        fold = clone(head).fit(texts[train], spam_ham.X_train[train], spam_ham.Y_train[train])
        seen = set(TfidfVectorizer(ngram_range=(1, 2)).fit(texts[train]).vocabulary_)
        held_out = set(TfidfVectorizer(ngram_range=(1, 2)).fit(texts[test]).vocabulary_)
        assert held_out - seen
        assert set(fold.vocabulary_) == seen
        expected[test] = fold.predict_proba(texts[test], spam_ham.X_train[test])
    np.testing.assert_allclose(P, expected)
    with pytest.raises(ValueError, match="text of every row"):
        cross_val_proba(head, spam_ham.X_train, spam_ham.Y_train)


def test_a_concept_head_fits_sparse_features_as_dense_ones(spam_ham: SpamHam) -> None:
    dense = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train, spam_ham.Y_train)
    sparse_head = ConceptHead(["spam", "ham"]).fit(
        sparse.csr_matrix(spam_ham.X_train), spam_ham.Y_train
    )
    assert sparse_head.chosen_C_ == dense.chosen_C_
    np.testing.assert_allclose(
        sparse_head.predict_proba(sparse.csr_matrix(spam_ham.X_test)),
        dense.predict_proba(spam_ham.X_test),
        atol=1e-6,
    )


@pytest.mark.parametrize("exclusive", [False, True])
def test_columns_no_training_row_uses_get_weight_zero_and_change_nothing_else(
    spam_ham: SpamHam, exclusive: bool
) -> None:
    # The same features with 1,000 empty columns between them: the sparse fit leaves those
    # out of the optimisation, and must give the model the plain features give.
    X = sparse.csr_matrix(spam_ham.X_train)
    empty = sparse.csr_matrix((X.shape[0], 1000))
    padded = sparse.hstack([X[:, :100], empty, X[:, 100:]], format="csr")
    params = {"mutually_exclusive": exclusive, "C": 10.0}
    plain = ConceptHead(["spam", "ham"], **params).fit(X, spam_ham.Y_train)
    wide = ConceptHead(["spam", "ham"], **params).fit(padded, spam_ham.Y_train)
    assert wide.coef_.shape[1] == X.shape[1] + 1000
    assert not wide.coef_[:, 100:1100].any()
    kept = np.delete(wide.coef_, np.s_[100:1100], axis=1)
    np.testing.assert_allclose(kept, plain.coef_, atol=1e-6)
    np.testing.assert_allclose(wide.intercept_, plain.intercept_, atol=1e-6)


def test_auto_keeps_the_head_its_choice_describes_and_choosing_fits_nothing(
    spam_ham: SpamHam,
) -> None:
    head = fitted(spam_ham, features="auto")
    kept = fitted(spam_ham, features=head.features_, C=head.chosen_C_)
    np.testing.assert_allclose(head.head_.coef_, kept.head_.coef_, atol=1e-8)
    candidate = ConceptHead(["spam", "ham"])
    candidate.choose(spam_ham.X_train, spam_ham.Y_train)
    assert candidate.cv_losses_ is not None and not hasattr(candidate, "coef_")


def test_calibration_error_and_reliability_bins() -> None:
    # 10 predictions at 0.85, 8 of them right: 0.05 off; 10 at 0.15, 2 right: 0.05 off.
    Y = np.array([[1]] * 8 + [[0]] * 2 + [[1]] * 2 + [[0]] * 8, dtype=np.int8)
    P = np.array([[0.85]] * 10 + [[0.15]] * 10)
    result = calibration(Y, P)
    assert result["ece"] == pytest.approx(0.05)
    assert [b["count"] for b in result["bins"]] == [10, 10]
    assert result["bins"][1] == pytest.approx({"confidence": 0.85, "observed": 0.8, "count": 10})
    unknown = np.full((3, 1), -1, dtype=np.int8)
    assert calibration(unknown, np.full((3, 1), 0.5)) == {"ece": None, "bins": []}


def with_meta(data: bytes, **changes) -> bytes:
    """The stored head with its JSON metadata changed."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"].item())) | changes
    buffer = io.BytesIO()
    np.savez(buffer, **(arrays | {"meta": np.array(json.dumps(meta))}))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: with_meta(d, format_version=FORMAT_VERSION + 1), "format version 2"),
        (lambda d: with_meta(d, features_used="words"), "malformed"),
        (lambda d: b"not a zip file", "not a stored hybrid head"),
    ],
)
def test_it_rejects_damaged_or_foreign_data(spam_ham: SpamHam, damage, message: str) -> None:
    data = fitted(spam_ham, features="hybrid").dumps()
    assert np.array_equal(
        HybridHead.loads(with_meta(data)).predict_proba(TEST, spam_ham.X_test),
        HybridHead.loads(data).predict_proba(TEST, spam_ham.X_test),
    )
    with pytest.raises(HeadFormatError, match=message):
        HybridHead.loads(damage(data))
    concept_head = ConceptHead(["spam", "ham"]).fit(spam_ham.X_train, spam_ham.Y_train)
    with pytest.raises(HeadFormatError):
        HybridHead.loads(concept_head.dumps())
