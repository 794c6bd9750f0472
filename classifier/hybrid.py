"""The hybrid head: logistic regression on the embedding and TF-IDF word n-grams together.

    head = HybridHead(["spam", "ham"]).fit(texts, embeddings, Y)
    head.predict_proba(["win a free phone"], embedder.encode(["win a free phone"]))
    head.fit_log_  # says which features Auto picked, and why

Features are the (unit-length) sentence embedding times `EMBEDDING_WEIGHT`, side by side
with the TF-IDF vector of the text (word unigrams and bigrams, sublinear term frequency,
L2-normalised). The vocabulary and IDF weights are learned from the training texts only,
so a cross-validation fold never sees the words of its held-out texts. The linear model
is a `ConceptHead` on those features: the same labels, background rows, C choice by
cross-validation with the one-standard-error rule, and the same training log.

`features` is "hybrid", "embedding" (the embedding alone, as `ConceptHead`) or "auto":
both are fitted and the one with the lower cross-validated log loss is kept (see
`choose_features`). Stored as ``.npz`` without pickle: the vocabulary as a string array,
the IDF weights and the coefficients as float arrays, the rest as JSON with a format
version; prediction rebuilds the transform from them and needs only the texts.

Choices below were measured with all-MiniLM-L6-v2 on the public SMS spam (train → test)
and IMDB sets (8 labels per class, 5 draws; and the full training sets), see
docs/BENCHMARKS.md:

* Embedding weight 2: the embedding and the TF-IDF vector both have length 1. Hybrid
  accuracy at weights 1 / 2 / 3: SMS 8 per class 90.4 / 90.1 / 90.4, SMS full
  94.4 / 94.4 / 92.8, IMDB 8 per class 64.0 / 64.7 / 64.8, IMDB full 70.5 / 71.0 / 67.5
  (the embedding alone: 90.1, 84.0, 63.7, 66.0). 3 lets the words help less on the full
  sets; 1 and 2 are close, 2 is a little better on IMDB.
* Auto compares log loss, not accuracy: accuracy on a few held-out rows moves in whole
  rows and ties often, while log loss also rewards the confident right answers the
  probabilities in the portal depend on. Both heads are scored on the same folds (same
  rows, same seed) at their own chosen C. The hybrid is kept unless the embedding alone
  has a lower loss by more than one standard error of the per-fold differences: the
  hybrid was as good or better on every set and size above, and when Auto preferred the
  embedding on ties it picked it for 1 of the 5 full IMDB folds and lost a point there.
  Without cross-validation (fewer than 5 examples of a class) Auto keeps the embedding
  alone, the head measured longest.
* No calibration step. Expected calibration error (`classifier.evaluation.calibration`)
  of the hybrid head on the test sets: SMS 0.131 (8 per class) and 0.044 (full), IMDB
  0.090 and 0.104, against 0.337 / 0.085 / 0.111 / 0.095 for raw `LogisticRegression()` on
  the embeddings. Temperature scaling fitted on out-of-fold probabilities of the training
  data made it worse with 8 labels per class (IMDB 0.090 -> 0.169, log loss 0.66 -> 0.78:
  16 rows can't fit a temperature) and helped little on the full sets (0.044 -> 0.036,
  0.104 -> 0.091, log loss unchanged).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from classifier import linear
from classifier.head import Choice, ConceptHead, HeadFormatError
from classifier.linear import Blocks

FORMAT_VERSION = 1
FEATURES = ("auto", "embedding", "hybrid")
EMBEDDING_WEIGHT = 2.0
NGRAM_RANGE = (1, 2)
MAX_TERMS = 50_000  # bounds the stored head and the fit time on long texts
# Word weights in all (terms times weight vectors): each L-BFGS step of a fit works on every
# weight, so many concepts keep fewer terms, the most frequent ones. Banking77 (10,003
# texts, 77 concepts, 23,608 terms in all): 5,194 terms fit in about half the time, 0.1
# point less accurate on its test set; the embedding alone is 0.2 points below that.
MAX_WORD_WEIGHTS = 400_000


class HybridHead(BaseEstimator):
    """Logistic-regression head over embeddings and TF-IDF, one probability per concept.

    Parameters: as `ConceptHead` (`concepts`, `mutually_exclusive`, `C`, `class_weight`,
    `background` embeddings, `random_state`), plus `background_texts` (the texts of the
    background rows, same order), `features` ("auto", "embedding" or "hybrid") and
    `embedding_weight`.

    Learned: `head_` (the `ConceptHead` on the features), `features_` (what was used),
    `vocabulary_` (terms in column order, empty for "embedding"), `idf_`, `chosen_C_`,
    `fit_log_`.
    """

    def __init__(
        self,
        concepts: Sequence[str],
        mutually_exclusive: bool = False,
        C: float | None = None,
        class_weight: str | None = None,
        background: np.ndarray | None = None,
        background_texts: Sequence[str] | None = None,
        features: str = "auto",
        embedding_weight: float = EMBEDDING_WEIGHT,
        random_state: int = 0,
    ) -> None:
        self.concepts = concepts
        self.mutually_exclusive = mutually_exclusive
        self.C = C
        self.class_weight = class_weight
        self.background = background
        self.background_texts = background_texts
        self.features = features
        self.embedding_weight = embedding_weight
        self.random_state = random_state

    def fit(self, texts: Sequence[str], X: np.ndarray, Y: np.ndarray) -> HybridHead:
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, not {self.features!r}")
        texts = list(texts)
        X = linear.as_features(X)
        if len(texts) != len(X):
            raise ValueError(f"got {len(texts)} texts for {len(X)} embeddings")
        background = self.background
        has_background = background is not None and len(background) > 0
        if has_background and len(self.background_texts or ()) != len(background):
            raise ValueError("background_texts must give the text of each background row")

        # Each candidate's C is chosen (by cross-validation) before any final fit: only
        # the head that is kept is fitted on all the rows.
        candidates: dict[str, tuple[ConceptHead, Choice]] = {}
        wordless = False
        if self.features in ("auto", "hybrid"):
            # One weight vector per concept; a binary softmax has one in all.
            binary = self.mutually_exclusive and len(self.concepts) == 2
            terms = min(MAX_TERMS, MAX_WORD_WEIGHTS // (1 if binary else len(self.concepts)))
            vectorizer = TfidfVectorizer(
                ngram_range=NGRAM_RANGE, sublinear_tf=True, max_features=terms
            )
            try:
                # The same TF-IDF arithmetic as `_hybrid`, without reading the texts twice.
                tfidf = vectorizer.fit_transform(texts)
            except ValueError:  # no text has a word of two or more letters
                wordless = True
            else:
                self.vocabulary_ = vectorizer.get_feature_names_out().astype(str)
                self.idf_ = vectorizer.idf_.astype(np.float64)
                extra = None
                if has_background:
                    extra = self._hybrid(list(self.background_texts), background)
                head = self._head(extra)
                features = Blocks(self.embedding_weight * X, tfidf.tocsr())
                candidates["hybrid"] = head, head.choose(features, Y)
        if self.features != "hybrid" or wordless:
            head = self._head(background)
            candidates["embedding"] = head, head.choose(X, Y)

        if wordless:
            self.features_, reason = "embedding", "the texts have no words for TF-IDF"
        elif self.features == "auto":
            self.features_, reason = choose_features(
                candidates["embedding"][0].cv_losses_, candidates["hybrid"][0].cv_losses_
            )
        else:
            self.features_, reason = self.features, "set"
        head, choice = candidates[self.features_]
        self.head_ = head.fit_chosen(choice)
        self.chosen_C_ = self.head_.chosen_C_
        if self.features_ == "embedding":
            self.vocabulary_ = np.array([], dtype=str)
            self.idf_ = np.array([], dtype=np.float64)
        self.fit_log_ = [
            *self.head_.fit_log_,
            f"features: {_describe(self.features_, len(self.vocabulary_))} ({reason})",
        ]
        return self

    def predict_proba(self, texts: Sequence[str], X: np.ndarray) -> np.ndarray:
        """Probabilities, shape (n, n_concepts): rows sum to 1 if mutually exclusive."""
        if not hasattr(self, "head_"):
            raise NotFittedError("this HybridHead is not trained yet: call fit() first")
        texts = list(texts)
        X = linear.as_features(X)
        if len(texts) != len(X):
            raise ValueError(f"got {len(texts)} texts for {len(X)} embeddings")
        if self.features_ == "embedding":
            return self.head_.predict_proba(X)
        return self.head_.predict_proba(self._hybrid(texts, X))

    def transform(self, texts: Sequence[str], X: np.ndarray) -> sparse.csr_matrix:
        """The hybrid features: weighted embedding columns, then the TF-IDF columns."""
        return self._hybrid(list(texts), X).tocsr()

    # Persistence: plain arrays and JSON, never pickle, so loading can't run code.

    def dumps(self) -> bytes:
        """The head as ``.npz`` bytes: vocabulary, IDF, coefficients, and JSON metadata."""
        if not hasattr(self, "head_"):
            raise NotFittedError("this HybridHead is not trained yet: call fit() first")
        inner = self.head_.to_arrays()
        coef, intercept = inner.pop("coef"), inner.pop("intercept")
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "hybrid",
            "features": self.features,
            "features_used": self.features_,
            "embedding_weight": float(self.embedding_weight),
            "ngram_range": list(NGRAM_RANGE),
            "fit_log": list(self.fit_log_),
            "head": inner,
        }
        buffer = io.BytesIO()
        np.savez(
            buffer,
            coef=coef,
            intercept=intercept,
            vocabulary=np.asarray(self.vocabulary_, dtype=str),
            idf=self.idf_,
            meta=np.array(json.dumps(meta)),
        )
        return buffer.getvalue()

    @classmethod
    def loads(cls, data: bytes) -> HybridHead:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"].item()))
                if not isinstance(meta, dict) or meta.get("kind") != "hybrid":
                    raise HeadFormatError("not a stored hybrid head")
                if meta.get("format_version") != FORMAT_VERSION:
                    raise HeadFormatError(
                        f"stored hybrid head has format version {meta.get('format_version')!r};"
                        f" this code reads {FORMAT_VERSION}"
                    )
                inner = dict(meta["head"])
                inner["coef"], inner["intercept"] = npz["coef"], npz["intercept"]
                vocabulary = npz["vocabulary"].astype(str)
                idf = npz["idf"].astype(np.float64)
            head = cls(
                inner["concepts"],
                mutually_exclusive=bool(inner["mutually_exclusive"]),
                C=inner["C"],
                class_weight=inner["class_weight"],
                features=str(meta["features"]),
                embedding_weight=float(meta["embedding_weight"]),
                random_state=inner["random_state"],
            )
            head.head_ = ConceptHead.from_arrays(inner)
            head.chosen_C_ = head.head_.chosen_C_
            head.features_ = str(meta["features_used"])
            head.fit_log_ = [str(line) for line in meta["fit_log"]]
        except HeadFormatError:
            raise
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
            raise HeadFormatError(f"not a stored hybrid head: {e!r}") from e
        if head.features_ not in ("embedding", "hybrid") or vocabulary.shape != idf.shape:
            raise HeadFormatError("stored hybrid head is malformed")
        head.vocabulary_, head.idf_ = vocabulary, idf
        return head

    # Helpers.

    def _head(self, background: Any) -> ConceptHead:
        return ConceptHead(
            self.concepts,
            mutually_exclusive=self.mutually_exclusive,
            C=self.C,
            class_weight=self.class_weight,
            background=background,
            random_state=self.random_state,
        )

    def _hybrid(self, texts: list[str], X: np.ndarray) -> Blocks:
        # The same arithmetic as TfidfVectorizer(sublinear_tf=True), from stored arrays only.
        vocabulary = {term: i for i, term in enumerate(self.vocabulary_)}
        counts = CountVectorizer(ngram_range=NGRAM_RANGE, vocabulary=vocabulary).transform(texts)
        tf = counts.astype(np.float64)
        tf.data = np.log(tf.data) + 1.0
        tfidf = normalize(tf @ sparse.diags(self.idf_), norm="l2", copy=False)
        return Blocks(self.embedding_weight * linear.as_features(X), tfidf.tocsr())


def choose_features(embedding: np.ndarray | None, hybrid: np.ndarray | None) -> tuple[str, str]:
    """Auto's choice from per-fold log losses, and the reason in words for the training log."""
    if embedding is None or hybrid is None:
        return "embedding", "Auto: too few examples to cross-validate, kept the embedding alone"
    difference = hybrid - embedding
    error = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else 0.0
    scores = (
        f"cross-validated log loss {hybrid.mean():.3f} hybrid, "
        f"{embedding.mean():.3f} embedding only"
    )
    if difference.mean() > error:
        return (
            "embedding",
            f"Auto: {scores}; the embedding alone is better by over one standard error",
        )
    return "hybrid", f"Auto: {scores}; the embedding alone is not better by over one standard error"


def load_head(data: bytes) -> ConceptHead | HybridHead:
    """A stored head of either kind: a hybrid head's file has a vocabulary array."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            hybrid = "vocabulary" in npz.files
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise HeadFormatError(f"not a stored head: {e}") from e
    return HybridHead.loads(data) if hybrid else ConceptHead.loads(data)


def head_proba(head: ConceptHead | HybridHead, texts: Sequence[str], X: np.ndarray) -> np.ndarray:
    """Probabilities from a head of either kind; only a hybrid head reads the texts."""
    if isinstance(head, HybridHead):
        return head.predict_proba(texts, X)
    return head.predict_proba(X)


def _describe(features: str, terms: int) -> str:
    if features == "embedding":
        return "embedding only"
    return f"embedding and TF-IDF word uni/bigrams ({terms:,} terms)"
