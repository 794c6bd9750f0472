"""Suspicious labels: labels that cross-validation confidently disagrees with, and
near-duplicate texts labeled differently.

Each labeled input is scored by a head trained on the other folds only
(`classifier.evaluation.cross_val_proba`, labels built as training builds them), so a
mistake can't vouch for itself. The check runs on the current labels, when the page is
asked for, on at most MAX_LABELED labeled inputs, and says so above that. Why not a
background job: a status row would need a migration, and a result kept only in Redis
would need its own expiry and progress page; on request, the embedding-only head (the
hybrid head refits its TF-IDF vocabulary per fold, too slow to wait for) makes both
checks on 5,000 labeled inputs in about 1 s (bench/similar.py), and the result is cached
under a fingerprint of the labels and vectors, so a reload takes milliseconds and a
changed label is seen at once.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.core.cache import cache
from django.db import transaction
from threadpoolctl import threadpool_limits

from classifier.evaluation import cross_val_proba, known_labels
from portal import labels, similar
from portal.access import get_concept
from portal.models import Annotation, App, Dataset, Input, ModelVersion
from portal.training import labels_matrix, new_head

MAX_LABELED = 5000
# Flagged when the held-out probability is this far on the other side of the label. With
# tens of labels, held-out probabilities stay soft (a spam text labeled ham among 16 good
# labels gets 0.87 spam), so 0.9 would hide the very mistakes a small set needs found.
CONFIDENCE = 0.8
DUPLICATE_SIMILARITY = 0.95
MIN_EXAMPLES = 3  # positives and negatives a concept needs to be cross-validated
MAX_ROWS = 50
FOLDS = 5
BLOCK = 512  # rows per block of the pairwise similarity
CACHE_SECONDS = 3600
# No Enrich corpus, C chosen by cross-validation as training does; one-vs-rest, or one
# softmax when the app's latest trained model has mutually exclusive concepts.
PARAMS = {"train_params": {"head": "Embedding only"}, "concepts_mutually_exclusive": False}
EXCLUSIVE_PARAMS = {**PARAMS, "concepts_mutually_exclusive": True}


@dataclass(frozen=True)
class Disputed:
    concept: str
    labeled: int  # 1 positive, 0 negative (given, or implied by another positive)
    probability: float


@dataclass
class Mislabeled:
    input_pk: int
    disputed: list[Disputed]
    scores: list[tuple[str, float]]  # every concept's held-out probability, highest first
    predicted: list[str]  # the concepts the held-out head gives 0.5 or more
    set_to: list[tuple[str, str]]  # (concept, value) changes that follow the model
    remove: list[tuple[str, str]]  # changes that remove the disputed labels given
    confidence: float
    item: Input | None = None

    @classmethod
    def fixed(cls, item: Input) -> "Mislabeled":
        """The row of an input just fixed: its current labels, nothing more to do."""
        return cls(item.pk, [], [], [], [], [], 0.0, item)


@dataclass
class Conflict:
    a_pk: int
    b_pk: int
    similarity: float
    concepts: list[str]  # positive on one side only
    a: Input | None = None
    b: Input | None = None
    a_to_b: list[tuple[str, str]] = field(default_factory=list)  # gives b the labels of a
    b_to_a: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Report:
    labeled: int = 0
    pending: int = 0  # labeled inputs not embedded yet
    too_many: bool = False
    too_few: str = ""  # why cross-validation could not run
    concepts: list[str] = field(default_factory=list)
    exclusive: bool = False  # as the latest trained model: probabilities add up to 1
    folds: int = 0
    note: str = ""
    mislabeled: list[Mislabeled] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def _labels(app: App, dataset: Dataset | None) -> dict[int, dict[str, int]]:
    """{input ID: {concept: value}} of the labeled inputs in scope."""
    found = Annotation.objects.filter(input__app=app)
    if dataset is not None:
        found = found.filter(input__datasets=dataset)
    by_input: dict[int, dict[str, int]] = defaultdict(dict)
    for pk, slug, value in found.values_list("input_id", "concept__slug", "value"):
        by_input[pk][slug] = value
    return dict(by_input)


def check(app: App, dataset: Dataset | None = None) -> Report:
    """Both checks on the app's (or the dataset's) labeled inputs."""
    given = _labels(app, dataset)
    report = Report(labeled=len(given), exclusive=_exclusive(app, dataset))
    if len(given) > MAX_LABELED:
        report.too_many = True
        return report
    index = similar.index_for(app)
    ids, rows = index.rows_of(sorted(given))
    report.pending = len(given) - len(ids)
    X = index.matrix[rows] if len(ids) else np.zeros((0, 0), dtype=np.float32)
    key = _fingerprint(ids, X, given, report.exclusive)
    cached = cache.get(key)
    if cached is not None:
        return cached
    # One BLAS thread: a web process shares the cores with its other requests, and BLAS
    # threads spinning on busy cores made 5,000 inputs take 14 s instead of 1.3 s.
    with threadpool_limits(limits=1, user_api="blas"):
        report.conflicts = _conflicts(ids, X, given)
        _mislabeled(report, ids, X, given)
    cache.set(key, report, CACHE_SECONDS)
    return report


def _exclusive(app: App, dataset: Dataset | None) -> bool:
    """Whether the app's latest trained model version (on `dataset`, when one is chosen)
    has mutually exclusive concepts."""
    trained = ModelVersion.objects.filter(model__app=app, status=ModelVersion.Status.TRAINED)
    if dataset is not None:
        trained = trained.filter(dataset_version__dataset=dataset)
    params = trained.order_by("-created", "-pk").values_list("params", flat=True).first()
    return bool(params and params.get("concepts_mutually_exclusive"))


def _fingerprint(
    ids: np.ndarray, X: np.ndarray, given: dict[int, dict[str, int]], exclusive: bool
) -> str:
    """A cache key that changes with any label, input or vector the checks read."""
    digest = hashlib.sha256(ids.tobytes() + X.tobytes() + bytes([exclusive]))
    digest.update(repr([sorted(given[int(pk)].items()) for pk in ids]).encode())
    return f"suspicious:{digest.hexdigest()}"


def _rows(ids: np.ndarray, given: dict[int, dict[str, int]]) -> list[tuple]:
    """Rows as `labels_matrix` reads them: (_, _, positives, negatives)."""
    rows = []
    for pk in ids:
        values = given[int(pk)]
        positive = [c for c, v in values.items() if v == Annotation.POSITIVE]
        negative = [c for c, v in values.items() if v == Annotation.NEGATIVE]
        rows.append((None, None, positive, negative))
    return rows


def _mislabeled(
    report: Report, ids: np.ndarray, X: np.ndarray, given: dict[int, dict[str, int]]
) -> None:
    rows = _rows(ids, given)
    every = sorted({c for values in given.values() for c in values})
    K = known_labels(labels_matrix(rows, every, exclusive=False))
    if report.exclusive:
        # A softmax needs two concepts, each with examples; the others are implied.
        enough = [c for j, c in enumerate(every) if (K[:, j] == 1).sum() >= MIN_EXAMPLES]
        enough = enough if len(enough) >= 2 else []
    else:
        enough = [
            c
            for j, c in enumerate(every)
            if (K[:, j] == 1).sum() >= MIN_EXAMPLES and (K[:, j] == 0).sum() >= MIN_EXAMPLES
        ]
    if not enough:
        report.too_few = (
            f"Cross-validation needs a concept with at least {MIN_EXAMPLES} positive and "
            f"{MIN_EXAMPLES} negative examples among the embedded labeled inputs (an input "
            "labeled with another concept counts as a negative)."
        )
        return
    Y = labels_matrix(rows, enough, exclusive=report.exclusive)
    if report.exclusive:
        # Exactly one of the concepts per input: the others are negatives.
        keep = (Y == 1).sum(axis=1) == 1
        Y = np.where(Y == 1, 1, 0).astype(np.int8)
    else:
        keep = (Y != -1).any(axis=1)
    ids, X, Y = ids[keep], X[keep], Y[keep]
    head = new_head(EXCLUSIVE_PARAMS if report.exclusive else PARAMS, enough, None)
    try:
        P, report.folds, report.note = cross_val_proba(head, X, Y, folds=FOLDS)
    except ValueError as exc:  # its message says which concept lacks examples
        report.too_few = f"Cross-validation can't run: {exc}."
        return
    report.concepts = enough
    K = known_labels(Y)
    flagged = ((K == 1) & (P < 1 - CONFIDENCE)) | ((K == 0) & (P > CONFIDENCE))
    for i in np.flatnonzero(flagged.any(axis=1)):
        report.mislabeled.append(_suspect(int(ids[i]), K[i], P[i], flagged[i], enough, given))
    report.mislabeled.sort(key=lambda m: (-m.confidence, m.input_pk))
    del report.mislabeled[MAX_ROWS:]


def _suspect(
    pk: int,
    known: np.ndarray,
    probabilities: np.ndarray,
    flagged: np.ndarray,
    concepts: list[str],
    given: dict[int, dict[str, int]],
) -> Mislabeled:
    values = given[pk]
    disputed = [
        Disputed(c, int(known[j]), float(probabilities[j]))
        for j, c in enumerate(concepts)
        if flagged[j]
    ]
    predicted = {c for j, c in enumerate(concepts) if probabilities[j] >= 0.5}
    set_to = [(c, "1") for c in sorted(predicted) if values.get(c) != Annotation.POSITIVE]
    set_to += [
        (c, "none") for c in concepts if values.get(c) == Annotation.POSITIVE and c not in predicted
    ]
    remove = [(d.concept, "none") for d in disputed if d.concept in values]
    scores = sorted(
        ((c, float(probabilities[j])) for j, c in enumerate(concepts)), key=lambda s: -s[1]
    )
    return Mislabeled(
        input_pk=pk,
        disputed=disputed,
        scores=scores,
        predicted=sorted(predicted),
        set_to=set_to if predicted else [],
        remove=remove,
        confidence=max(abs(d.labeled - d.probability) for d in disputed),
    )


def _conflicts(ids: np.ndarray, X: np.ndarray, given: dict[int, dict[str, int]]) -> list[Conflict]:
    """Pairs of labeled inputs at least DUPLICATE_SIMILARITY alike whose positive concepts
    differ, most alike first."""
    positives = [
        frozenset(c for c, v in given[int(pk)].items() if v == Annotation.POSITIVE) for pk in ids
    ]
    found: list[Conflict] = []
    for start in range(0, len(ids), BLOCK):
        # Each pair once: each row against the rows after it.
        block = X[start : start + BLOCK] @ X[start:].T
        block[np.tril_indices(len(block), m=block.shape[1])] = -1.0
        for i, j in zip(*np.nonzero(block >= DUPLICATE_SIMILARITY), strict=True):
            a, b = start + int(i), start + int(j)
            differ = positives[a] ^ positives[b]
            if differ:
                found.append(Conflict(int(ids[a]), int(ids[b]), float(block[i, j]), sorted(differ)))
    found.sort(key=lambda c: (-c.similarity, c.a_pk, c.b_pk))
    return found[:MAX_ROWS]


def changes_between(source: Input, target: Input) -> list[tuple[str, str]]:
    """The (concept, value) changes that give `target` exactly the labels of `source`."""
    wanted = {a.concept.slug: str(a.value) for a in source.annotations.all()}
    have = {a.concept.slug: str(a.value) for a in target.annotations.all()}
    changes = [(c, v) for c, v in sorted(wanted.items()) if have.get(c) != v]
    return changes + [(c, "none") for c in sorted(have) if c not in wanted]


class FixError(ValueError):
    """The posted change can't be applied; the message says why."""


VALUES = {"1": Annotation.POSITIVE, "0": Annotation.NEGATIVE, "none": None}


def parse_changes(app: App, posted: list[str]) -> list[tuple]:
    """[(concept, value)] from "concept:value" fields (value 1, 0 or none)."""
    changes = []
    for item in posted:
        slug, _, value = item.rpartition(":")
        if value not in VALUES or not slug:
            raise FixError(f"Unknown change {item!r}: send concept:1, concept:0 or concept:none.")
        changes.append((get_concept(app, slug), VALUES[value]))
    if not changes:
        raise FixError("Nothing to change.")
    return changes


def apply_changes(item: Input, changes: list[tuple], revision: int, author) -> bool:
    """All the changes to `item`, or none of them if somebody changed its labels since
    `revision` (returns False then)."""
    with transaction.atomic():
        for concept, value in changes:
            if not labels.set_label(item, concept, value, revision, author):
                transaction.set_rollback(True)
                return False
            revision += 1
    return True
