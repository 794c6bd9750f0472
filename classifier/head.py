"""The concept head: logistic regression on sentence embeddings (SetFit's linear head).

    head = ConceptHead(["spam", "ham"]).fit(embeddings, Y)
    head.predict_proba(embedder.encode(["win a free phone"]))  # (1, 2)

Labels are an int8 matrix ``Y`` of shape (n_inputs, n_concepts): 1 positive, 0 negative,
-1 unknown.

* Mutually exclusive concepts: one multinomial (softmax) model; probabilities sum to 1.
  Each input must be positive for exactly one concept. Inputs with no positive (only
  negatives or unknowns) say nothing about which class they are, so they are skipped;
  an input positive for two or more concepts is an error.
* Otherwise one binary (sigmoid) model per concept, so an input can carry several. For a
  concept, the positives are the inputs labeled 1; the negatives are the inputs labeled 0
  plus the inputs that are unknown (-1) for it but positive for another concept (an input
  labeled only "spam" is a "ham" negative). Inputs with no label at all are ignored.
  `background` rows (see `classifier.enrich`) are extra negatives for every concept.

Choices below were measured on the public SMS spam and IMDB sets with all-MiniLM-L6-v2
embeddings (5-40 labeled examples per class, 10-20 random draws each, and the full sets):

* Default C is 10, not scikit-learn's 1: embeddings are unit vectors of small components,
  so C=1 squashes probabilities towards the class prior (SMS, 10 examples per class: the
  true class got 0.58 on average, against 0.73 at C=10) and, on imbalanced data, predicts
  the majority class (full SMS set: accuracy 0.84 against 0.92). On small balanced sets,
  accuracy is the same for any C from 0.1 to 100; log loss favours 10.
* C by 5-fold cross-validation over (0.1, 1, 10, 100), scored by log loss, once every class
  of a problem has 5 examples. Log loss, because users read the probabilities; choosing by
  accuracy gave the same accuracy and much worse probabilities. One C is shared by all the
  concepts (the mean of their losses) so that small concepts don't get a noisy choice of
  their own; one-vs-rest concepts with fewer examples take the C the others chose.
  The default stays unless another C's loss is lower by more than one standard error of
  the per-fold differences: on IMDB (200 reviews, 25 splits) the plain minimum picked C=1
  in 14 of 25 splits and lost 1.3 points of accuracy against raw `LogisticRegression()`;
  with this rule it picked C=10 in 19 and matched it.
* Background rows together weigh half as much as the concept's labeled examples. At full
  weight, ~1,000 background negatives against 10 positives per class pushed the true
  class's probability down to 0.06-0.26; at half weight, off-topic texts fall from 0.5 to
  0.05-0.14, ROC AUC is unchanged on SMS and 0.02-0.05 lower on IMDB.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split

from classifier import linear
from classifier.linear import Features

FORMAT_VERSION = 1
DEFAULT_C = 10.0
C_CANDIDATES = (0.1, 1.0, 10.0, 100.0)
MIN_PER_CLASS_FOR_CV = 5
N_FOLDS = 5
BACKGROUND_SHARE = 0.5
# Choosing C costs N_FOLDS x len(C_CANDIDATES) fits: on larger data it is chosen on a
# stratified sample, which bounds the cost while the final fit still sees every row.
CV_MAX_ROWS = 600
CV_MAX_BACKGROUND = 300  # still enough rows for the background's share of the weight
CV_FOLDS_SAMPLED = 3
MAX_ITER = 1000


class TrainingError(ValueError):
    """The labels can't train a head; the message says why in words a user understands."""


class HeadFormatError(ValueError):
    """Stored head arrays are not in a format this code can load."""


class ConceptHead(BaseEstimator):
    """Logistic-regression head over embeddings, one probability per concept.

    Parameters: `concepts` (names, in column order of ``Y``), `mutually_exclusive`, `C`
    (None: choose by cross-validation when there is enough data, else `DEFAULT_C`),
    `class_weight` ("balanced" or None), `background` (extra negative embeddings for the
    one-vs-rest models; ignored for mutually exclusive ones), `random_state` (CV folds).

    Learned: `coef_` (n_concepts, dims), `intercept_` (n_concepts,), `chosen_C_`,
    `fit_log_` (lines for the training log), `n_features_in_`, and `cv_losses_`: the
    held-out log loss of each cross-validation fold at the chosen C (None when C was not
    chosen by cross-validation; not stored). ``X`` may be a dense array or a SciPy sparse
    matrix (`classifier.hybrid` passes TF-IDF columns).
    """

    def __init__(
        self,
        concepts: Sequence[str],
        mutually_exclusive: bool = False,
        C: float | None = None,
        class_weight: str | None = None,
        background: np.ndarray | None = None,
        random_state: int = 0,
    ) -> None:
        self.concepts = concepts
        self.mutually_exclusive = mutually_exclusive
        self.C = C
        self.class_weight = class_weight
        self.background = background
        self.random_state = random_state

    def fit(self, X: np.ndarray, Y: np.ndarray) -> ConceptHead:
        return self.fit_chosen(self.choose(X, Y))

    def choose(self, X: np.ndarray, Y: np.ndarray) -> Choice:
        """Check the labels and choose C, without the final fit: sets `cv_losses_`.

        `fit_chosen` then fits the head. Auto (`classifier.hybrid`) compares two heads'
        choices and fits only the one it keeps.
        """
        X, Y = self._check_training_data(X, Y)
        if self.mutually_exclusive:
            problems, log = self._exclusive_problem(X, Y)
        else:
            problems, log = self._one_vs_rest_problems(X, Y)
        notes: list[str] = []
        with _converging(notes):
            C, c_log, self.cv_losses_ = self._choose_C(problems, self.class_weight == "balanced")
        return Choice(problems, [*log, *c_log, *notes], C, X.shape[1])

    def fit_chosen(self, choice: Choice) -> ConceptHead:
        balanced = self.class_weight == "balanced"
        log = list(choice.log)
        with _converging(log):
            fitted = [p.fit(np.arange(len(p.y)), balanced, [choice.C])[0] for p in choice.problems]
        if self.mutually_exclusive:
            self.coef_, self.intercept_ = fitted[0]
        else:
            # Each binary model is stored in softmax form [0; w]; its sigmoid weights are row 1.
            self.coef_ = np.vstack([coef[1] for coef, _ in fitted])
            self.intercept_ = np.array([intercept[1] for _, intercept in fitted])
        self.chosen_C_ = float(choice.C)
        self.n_features_in_ = choice.n_features
        self.fit_log_ = log
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities, shape (n, n_concepts): rows sum to 1 if mutually exclusive."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("this ConceptHead is not trained yet: call fit() first")
        X = linear.as_features(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"expected embeddings of shape (n, {self.n_features_in_}), got {X.shape}"
            )
        scores = linear.dot(X, self.coef_) + self.intercept_
        return softmax(scores, axis=1) if self.mutually_exclusive else expit(scores)

    # Persistence: plain arrays and JSON, never pickle, so loading can't run code.

    def to_arrays(self) -> dict[str, Any]:
        """The trained head as numpy arrays (`coef`, `intercept`) and JSON-able metadata."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("this ConceptHead is not trained yet: call fit() first")
        return {
            "format_version": FORMAT_VERSION,
            "concepts": list(self.concepts),
            "mutually_exclusive": bool(self.mutually_exclusive),
            "C": None if self.C is None else float(self.C),
            "class_weight": self.class_weight,
            "random_state": self.random_state,
            "chosen_C": self.chosen_C_,
            "fit_log": list(self.fit_log_),
            "coef": self.coef_.copy(),
            "intercept": self.intercept_.copy(),
        }

    @classmethod
    def from_arrays(cls, d: dict[str, Any]) -> ConceptHead:
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise HeadFormatError(
                f"stored head has format version {version!r}; this code reads {FORMAT_VERSION}"
            )
        try:
            concepts = [str(c) for c in d["concepts"]]
            coef = np.asarray(d["coef"], dtype=np.float64)
            intercept = np.asarray(d["intercept"], dtype=np.float64)
            head = cls(
                concepts,
                mutually_exclusive=bool(d["mutually_exclusive"]),
                C=d["C"],
                class_weight=d["class_weight"],
                random_state=d["random_state"],
            )
            chosen_C = float(d["chosen_C"])
            fit_log = [str(line) for line in d["fit_log"]]
        except (KeyError, TypeError, ValueError) as e:
            raise HeadFormatError(f"stored head is incomplete or malformed: {e!r}") from e
        if coef.ndim != 2 or coef.shape[0] != len(concepts) or intercept.shape != (len(concepts),):
            raise HeadFormatError(
                f"stored head has arrays of shapes {coef.shape} and {intercept.shape} "
                f"for {len(concepts)} concepts"
            )
        head.coef_, head.intercept_ = coef, intercept
        head.chosen_C_, head.fit_log_, head.n_features_in_ = chosen_C, fit_log, coef.shape[1]
        return head

    def dumps(self) -> bytes:
        """The head as ``.npz`` bytes: the arrays, and the metadata as one JSON string."""
        d = self.to_arrays()
        coef, intercept = d.pop("coef"), d.pop("intercept")
        buffer = io.BytesIO()
        np.savez(buffer, coef=coef, intercept=intercept, meta=np.array(json.dumps(d)))
        return buffer.getvalue()

    @classmethod
    def loads(cls, data: bytes) -> ConceptHead:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                d = json.loads(str(npz["meta"].item()))
                if not isinstance(d, dict):
                    raise HeadFormatError("stored head metadata is not a JSON object")
                d["coef"], d["intercept"] = npz["coef"], npz["intercept"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            if isinstance(e, HeadFormatError):
                raise
            raise HeadFormatError(f"not a stored concept head: {e}") from e
        return cls.from_arrays(d)

    # Training helpers.

    def _check_training_data(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        concepts = list(self.concepts)
        if len(set(concepts)) != len(concepts):
            raise ValueError(f"concept names must be unique, got {concepts}")
        if not concepts:
            raise TrainingError("choose at least one concept to train")
        if self.mutually_exclusive and len(concepts) < 2:
            raise TrainingError("mutually exclusive concepts need at least 2 concepts")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', not {self.class_weight!r}")
        X = linear.as_features(X)
        Y = np.asarray(Y)
        if X.ndim != 2 or Y.shape != (X.shape[0], len(concepts)):
            raise ValueError(
                f"expected X of shape (n, dims) and Y of shape (n, {len(concepts)}), "
                f"got {X.shape} and {Y.shape}"
            )
        if not np.isin(Y, (-1, 0, 1)).all():
            raise ValueError("labels must be 1 (positive), 0 (negative) or -1 (unknown)")
        if self.background is not None and self.background.shape[0]:
            background = linear.as_features(self.background)
            if background.ndim != 2 or background.shape[1] != X.shape[1]:
                raise ValueError(
                    f"background must have shape (m, {X.shape[1]}), got {background.shape}"
                )
        return X, Y.astype(np.int8)

    def _background(self) -> Features | None:
        if self.background is None or self.background.shape[0] == 0:
            return None
        return linear.as_features(self.background)

    def _exclusive_problem(self, X: np.ndarray, Y: np.ndarray) -> tuple[list[_Problem], list[str]]:
        positives = (Y == 1).sum(axis=1)
        for j, concept in enumerate(self.concepts):
            if not (Y[:, j] == 1).any():
                raise TrainingError(f"concept {concept!r} has no positive examples")
        several = np.flatnonzero(positives > 1)
        if len(several):
            rows = ", ".join(str(i) for i in several[:5]) + (", ..." if len(several) > 5 else "")
            raise TrainingError(
                f"{len(several)} inputs are labeled with more than one of the mutually "
                f"exclusive concepts (rows {rows}): keep one concept per input, or don't set "
                "the concepts as mutually exclusive"
            )
        used = positives == 1
        y = np.argmax(Y[used] == 1, axis=1)
        log = [
            f"mutually exclusive: one softmax model over {len(self.concepts)} concepts, "
            f"{used.sum()} inputs, {X.shape[1]} dimensions"
        ]
        counts = np.bincount(y, minlength=len(self.concepts))
        log.append(", ".join(f"{c!r}: {n}" for c, n in zip(self.concepts, counts, strict=True)))
        if (~used).any():
            log.append(f"skipped {(~used).sum()} inputs with no positive concept")
        if self._background() is not None:
            log.append("Enrich: background texts not used (softmax has no 'none of these' class)")
        problem = _Problem("all concepts", X, np.flatnonzero(used), y, len(self.concepts), None)
        return [problem], log

    def _one_vs_rest_problems(
        self, X: np.ndarray, Y: np.ndarray
    ) -> tuple[list[_Problem], list[str]]:
        background = self._background()
        positive_elsewhere = (Y == 1).any(axis=1)
        masks = []
        for j, concept in enumerate(self.concepts):
            column = Y[:, j]
            positive = column == 1
            negative = (column == 0) | ((column == -1) & positive_elsewhere)
            if not positive.any():
                raise TrainingError(f"concept {concept!r} has no positive examples")
            masks.append((positive, negative))
        for concept, (_, negative) in zip(self.concepts, masks, strict=True):
            if not negative.any() and background is None:
                raise TrainingError(
                    f"concept {concept!r} has no negative examples: label some inputs as "
                    f"not {concept} or enable Enrich dataset"
                )
        ignored = int(((Y == -1).all(axis=1)).sum())
        log = [
            f"one-vs-rest: {len(self.concepts)} binary models, {X.shape[0] - ignored} labeled "
            f"inputs, {X.shape[1]} dimensions"
        ]
        if ignored:
            log.append(f"ignored {ignored} inputs with no label")
        if background is not None:
            log.append(f"Enrich: {background.shape[0]} background texts as extra negatives")
        problems = []
        for concept, (positive, negative) in zip(self.concepts, masks, strict=True):
            rows = positive | negative
            problems.append(
                _Problem(
                    concept, X, np.flatnonzero(rows), positive[rows].astype(int), 2, background
                )
            )
            log.append(f"{concept!r}: {positive.sum()} positive, {negative.sum()} negative")
        return problems, log

    def _choose_C(
        self, problems: list[_Problem], balanced: bool
    ) -> tuple[float, list[str], np.ndarray | None]:
        if self.C is not None:
            return float(self.C), [f"C = {self.C:g} (set)"], None
        # One-vs-rest: C is chosen on the concepts with enough examples and serves them
        # all, so that a few rare concepts don't leave the head untuned.
        eligible = [
            p
            for p in problems
            if np.bincount(p.y, minlength=p.n_classes).min() >= MIN_PER_CLASS_FOR_CV
        ]
        if not eligible:
            return (
                DEFAULT_C,
                [
                    f"C = {DEFAULT_C:g} (default: cross-validation needs {MIN_PER_CLASS_FOR_CV} "
                    f"examples of each class, {problems[0].name!r} has fewer)"
                ],
                None,
            )
        per_fold = sum(p.cv_losses(C_CANDIDATES, balanced, self.random_state) for p in eligible)
        per_fold = per_fold / len(eligible)
        losses = per_fold.mean(axis=0)
        chosen = prefer_default(per_fold)
        best = C_CANDIDATES[chosen]
        pairs = zip(C_CANDIDATES, losses, strict=True)
        scores = ", ".join(f"C={c:g}: {loss:.3f}" for c, loss in pairs)
        sampled = any(p.sampled for p in eligible)
        how = (
            f"{CV_FOLDS_SAMPLED}-fold cross-validation on a stratified sample of "
            f"{CV_MAX_ROWS:,} labeled inputs"
            if sampled
            else f"{N_FOLDS}-fold cross-validation"
        )
        if len(eligible) < len(problems):
            how += (
                f" on the {len(eligible)} of {len(problems)} concepts with "
                f"{MIN_PER_CLASS_FOR_CV} examples of each class"
            )
        return (
            best,
            [f"{how}, mean log loss: {scores}", f"C = {best:g} (chosen by cross-validation)"],
            per_fold[:, chosen],
        )


@dataclass
class Choice:
    """What `ConceptHead.choose` decided: the problems to fit, the log so far, and C."""

    problems: list[_Problem]
    log: list[str]
    C: float
    n_features: int


@contextmanager
def _converging(log: list[str]) -> Iterator[None]:
    """Say once in `log` if the optimiser stopped before converging; pass other warnings on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn(w.message, w.category, stacklevel=3)
    note = f"note: the optimiser did not fully converge in {MAX_ITER} iterations"
    if note not in log and any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.append(note)


@dataclass
class _Problem:
    """One logistic regression to fit: labeled rows, their class, optional background.

    Every concept's problem shares the one matrix ``X`` of all the inputs and names its own
    rows in `index`, so that only the training set being fitted is ever copied.
    """

    name: str
    X: Features
    index: np.ndarray  # the rows of X this problem labels, in the order of y
    y: np.ndarray  # class index of each labeled row
    n_classes: int
    background: Features | None  # extra rows of class 0

    def training_set(
        self, rows: np.ndarray, balanced: bool
    ) -> tuple[Features, np.ndarray, np.ndarray]:
        picked, y = self.index[rows], self.y[rows]
        w = np.ones(len(y))
        X = linear.rows(self.X, picked)
        if self.background is not None:
            m = self.background.shape[0]
            X = linear.stack(X, self.background)
            y = np.concatenate([y, np.zeros(m, dtype=y.dtype)])
            w = np.concatenate([w, np.full(m, min(1.0, BACKGROUND_SHARE * len(rows) / m))])
        if balanced:
            w = _balanced(w, y, self.n_classes)
        return X, y, w

    def fit(
        self, rows: np.ndarray, balanced: bool, Cs: Sequence[float]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Softmax-form parameters, (n_classes, dims) and (n_classes,), for each C in turn.

        Each fit starts from the previous solution (the problem is convex, so only the
        number of iterations changes): in ascending order this about halves the work.
        Columns no training row uses are left out (`linear.used_columns`): that matters
        for a fold that sees a few of many words.
        """
        X, y, w = self.training_set(rows, balanced)
        width = X.shape[1]
        X, columns = linear.used_columns(X)
        results: list[tuple[np.ndarray, np.ndarray]] = []
        start = None
        for C in Cs:
            start = linear.fit_logistic(X, y, w, C, self.n_classes, start, MAX_ITER)
            weights, intercept = start
            if columns is not None:
                weights = np.zeros((len(weights), width))
                weights[:, columns] = start[0]
            if self.n_classes == 2:
                # A binary model has one weight vector w: softmax over [0, w.x] is sigmoid(w.x).
                weights = np.vstack([np.zeros_like(weights), weights])
                intercept = np.concatenate([[0.0], intercept])
            results.append((weights.copy(), intercept.copy()))
        return results

    @property
    def sampled(self) -> bool:
        """Whether C is chosen on a sample: there are more than CV_MAX_ROWS rows, and the
        rows left out still hold every class once, as a stratified split needs."""
        return len(self.y) - CV_MAX_ROWS >= self.n_classes

    def sample(self, random_state: int) -> _Problem:
        """This problem, or a stratified sample of it small enough to cross-validate fast."""
        rng = np.random.default_rng(random_state)
        rows = np.arange(len(self.y))
        if self.sampled:
            rows, _ = train_test_split(
                rows, train_size=CV_MAX_ROWS, stratify=self.y, random_state=random_state
            )
        background = self.background
        if background is not None and background.shape[0] > CV_MAX_BACKGROUND:
            picked = rng.choice(background.shape[0], CV_MAX_BACKGROUND, replace=False)
            background = linear.rows(background, picked)
        if len(rows) == len(self.y) and background is self.background:
            return self
        return _Problem(
            self.name, self.X, self.index[rows], self.y[rows], self.n_classes, background
        )

    def cv_losses(
        self, Cs: Sequence[float], balanced: bool, random_state: int, n_folds: int = N_FOLDS
    ) -> np.ndarray:
        """Held-out log loss, (n_folds, len(Cs)); background rows only ever train."""
        if (sample := self.sample(random_state)) is not self:
            return sample.cv_losses(Cs, balanced, random_state, CV_FOLDS_SAMPLED)
        folds = StratifiedKFold(n_folds, shuffle=True, random_state=random_state)
        losses = np.zeros((n_folds, len(Cs)))
        for k, (train, test) in enumerate(folds.split(self.index, self.y)):
            y_test = self.y[test]
            weights = _balanced(np.ones(len(test)), y_test, self.n_classes) if balanced else None
            for i, (coef, intercept) in enumerate(self.fit(train, balanced, Cs)):
                scores = linear.dot(linear.rows(self.X, self.index[test]), coef) + intercept
                p = softmax(scores, axis=1)
                losses[k, i] = log_loss(
                    y_test, p, sample_weight=weights, labels=np.arange(self.n_classes)
                )
        return losses


def prefer_default(per_fold: np.ndarray) -> int:
    """Index of the C to use: the default unless another is better by over a standard error."""
    mean = per_fold.mean(axis=0)
    best = int(np.argmin(mean))
    default = C_CANDIDATES.index(DEFAULT_C)
    difference = per_fold[:, default] - per_fold[:, best]
    error = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else 0.0
    return default if difference.mean() <= error else best


def _balanced(w: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Scale `w` so every class carries the same total weight (scikit-learn's "balanced")."""
    totals = np.bincount(y, weights=w, minlength=n_classes)
    return w * (w.sum() / (n_classes * totals[y]))
