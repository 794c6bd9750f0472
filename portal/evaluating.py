"""Evaluate a trained model version on a dataset version: queue it, score it, read it.

On the dataset version the model was trained on, every input is scored by a head
trained on the other folds only (stratified k-fold cross-validation, with the version's
own training parameters); on any other version, by the trained head itself. Either way
the numbers come from `classifier.evaluation` and embeddings from the cache.

Another version may still hold inputs the model was trained on (a later version of the
same dataset holds all of them): the evaluation counts them, by text, and the pages and
the API say so; `unseen_only` scores only the others.
"""

import io
import logging
import zipfile
from dataclasses import dataclass

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from classifier import embedders
from classifier.evaluation import (
    calibration,
    cross_val_proba,
    evaluate,
    known_labels,
    most_confident_mistakes,
    threshold_for_precision,
    threshold_sweep,
)
from classifier.head import TrainingError
from classifier.hybrid import head_proba, load_head
from portal import embedding
from portal.models import DatasetVersion, DatasetVersionRow, Evaluation, ModelVersion
from portal.queue import enqueue_on_commit
from portal.tasks import evaluate_model_version
from portal.training import enriched, labels_matrix, new_head

log = logging.getLogger(__name__)

Status = Evaluation.Status
FOLDS = 5
QUEUE_UNAVAILABLE = "the job queue was unavailable; nothing was evaluated"
TIMED_OUT = "the evaluation took longer than the time limit and was stopped"
MAX_ATTEMPTS = 3
STOPPED = (
    f"the evaluation was interrupted {MAX_ATTEMPTS} times (its worker process stopped) "
    "and was given up; try again"
)


class EvaluationError(ValueError):
    """The evaluation can't start or can't go on; the message says why in plain words."""


def trained_texts(version: ModelVersion):
    """The text hashes of the rows the model version was trained on, as a subquery."""
    return DatasetVersionRow.objects.filter(version_id=version.dataset_version_id).values(
        "text_hash"
    )


def seen_counts(version: ModelVersion, candidates: list[DatasetVersion]) -> dict[int, int]:
    """For each dataset version (by primary key), how many of its inputs the model version
    was trained on, by text: one query."""
    shared = (
        DatasetVersionRow.objects.filter(
            version__in=candidates, text_hash__in=trained_texts(version)
        )
        .values("version")
        .annotate(n=Count("pk"))
    )
    counts = {dv.pk: 0 for dv in candidates}
    counts.update({row["version"]: row["n"] for row in shared})
    return counts


def start_evaluation(
    version: ModelVersion,
    dataset_version: DatasetVersion,
    user: AbstractBaseUser | None,
    label: str = "",
    unseen_only: bool = False,
) -> Evaluation:
    """Queue an evaluation. Raises EvaluationError (nothing created) or QueueUnavailable
    (the evaluation is FAILED with the reason). `unseen_only`: on another dataset version
    than the training one, score only the inputs the model was not trained on."""
    if version.status != ModelVersion.Status.TRAINED:
        raise EvaluationError(f"Version {version.number} is not trained.")
    if dataset_version.dataset.app_id != version.model.app_id:
        raise EvaluationError("The dataset belongs to another app.")
    if dataset_version.status != DatasetVersion.Status.READY:
        raise EvaluationError(
            f"Version {dataset_version.number} of dataset {dataset_version.dataset.slug} "
            "is not ready."
        )
    kfold = dataset_version.pk == version.dataset_version_id
    seen = total = None
    if kfold and unseen_only:
        raise EvaluationError(
            "Cross-validation already scores every input with a model trained without it: "
            "only the inputs not in the training data applies to another dataset version."
        )
    if not kfold:
        seen = seen_counts(version, [dataset_version])[dataset_version.pk]
        total = dataset_version.input_count
        if unseen_only and seen >= total:
            raise EvaluationError(
                f"Every input of {dataset_version.dataset.slug} v{dataset_version.number} was "
                "in the training data: no input is left to score."
            )
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            model_version=version,
            dataset_version=dataset_version,
            user=user,
            label=label,
            kfold=kfold,
            seen=seen,
            total=total,
            unseen_only=unseen_only and not kfold,
        )
        enqueue_on_commit(
            evaluate_model_version,
            evaluation.pk,
            on_failure=lambda pk=evaluation.pk: fail(pk, QUEUE_UNAVAILABLE),
        )
    return evaluation


def fail(evaluation_id: int, reason: str) -> None:
    """Mark an unfinished evaluation failed; a finished one is never overwritten."""
    unfinished = [Status.QUEUED, Status.EVALUATING]
    Evaluation.objects.filter(pk=evaluation_id, status__in=unfinished).update(
        status=Status.FAILED, error=reason, finished=timezone.now()
    )


def _report(evaluation_id: int, stage: str, progress: float) -> None:
    Evaluation.objects.filter(pk=evaluation_id, status=Status.EVALUATING).update(
        stage=stage, progress=progress
    )


def claim(evaluation_id: int, redelivered: bool) -> bool:
    """Take the evaluation for this worker: queued, or evaluating under a worker that died
    (a redelivered message), at most MAX_ATTEMPTS times."""
    statuses = [Status.QUEUED, Status.EVALUATING] if redelivered else [Status.QUEUED]
    claimed = Evaluation.objects.filter(
        pk=evaluation_id, status__in=statuses, attempts__lt=MAX_ATTEMPTS
    ).update(
        status=Status.EVALUATING,
        started=timezone.now(),
        stage="Starting",
        progress=0.0,
        attempts=F("attempts") + 1,
    )
    return claimed == 1


def run(evaluation_id: int, redelivered: bool = False) -> None:
    """The worker's side: claim the evaluation, score every labeled input, store the report."""
    if not claim(evaluation_id, redelivered):
        if redelivered:  # its workers died MAX_ATTEMPTS times, or it is finished
            fail(evaluation_id, STOPPED)
        return  # another delivery has it or had it
    evaluation = (
        Evaluation.objects.select_related("model_version", "dataset_version__dataset")
        .filter(pk=evaluation_id)
        .first()
    )
    if evaluation is None:
        return  # deleted meanwhile
    try:
        _score(evaluation)
    except (TrainingError, EvaluationError) as exc:
        fail(evaluation_id, str(exc))
    except SoftTimeLimitExceeded:
        fail(evaluation_id, TIMED_OUT)
    except Exception as exc:
        log.exception("evaluation %s failed", evaluation_id)
        fail(evaluation_id, f"the evaluation failed: {exc}")


def _score(evaluation: Evaluation) -> None:
    version, dataset_version = evaluation.model_version, evaluation.dataset_version
    params = version.params
    train_params = params.get("train_params", {})
    base_model = train_params.get("base_embed_model") or embedders.DEFAULT_MODEL
    concepts = list(version.concepts)
    exclusive = bool(params.get("concepts_mutually_exclusive"))
    scored = DatasetVersionRow.objects.filter(version=dataset_version)
    if evaluation.unseen_only:
        scored = scored.exclude(text_hash__in=trained_texts(version))
    rows = list(
        scored.order_by("pk").values_list("text", "text_hash", "positive", "negative", "pk")
    )
    Y = labels_matrix([row[:4] for row in rows], concepts, exclusive)
    labeled = (Y != -1).any(axis=1)
    rows = [row for row, keep in zip(rows, labeled, strict=True) if keep]
    Y = Y[labeled]
    where = f"version {dataset_version.number} of dataset {dataset_version.dataset.slug}"
    if not rows or not (Y == 1).any():
        raise EvaluationError(f"no input in {where} is labeled with {' or '.join(concepts)}")
    if exclusive and ((Y == 1).sum(axis=1) > 1).any():
        raise EvaluationError(
            f"some inputs in {where} are labeled with more than one of the model's mutually "
            "exclusive concepts"
        )

    def embedding_progress(done: int, missing: int) -> None:
        _report(evaluation.pk, f"Embedding {done:,} of {missing:,} new texts", 0.5 * done / missing)

    _report(evaluation.pk, f"Embedding {len(rows):,} texts", 0.0)
    X = embedding.vectors(
        base_model, [r[0] for r in rows], [r[1] for r in rows], progress=embedding_progress
    )
    if evaluation.kfold:
        background = embedding.background_vectors(base_model) if enriched(params) else None
        head = new_head(params, concepts, background)

        def fold_progress(done: int, folds: int) -> None:
            stage = f"Cross-validation: fold {done} of {folds} done"
            _report(evaluation.pk, stage, 0.5 + 0.45 * done / folds)

        _report(evaluation.pk, "Cross-validation", 0.5)
        try:
            P, folds, note = cross_val_proba(
                head, X, Y, folds=FOLDS, progress=fold_progress, texts=[r[0] for r in rows]
            )
        except ValueError as exc:
            raise EvaluationError(str(exc)) from exc
        evaluation.folds, evaluation.folds_note = folds, note
    else:
        _report(evaluation.pk, "Scoring", 0.5)
        P = head_proba(load_head(bytes(version.head)), [r[0] for r in rows], X)

    metrics = evaluate(Y, P, concepts, threshold=0.5, mutually_exclusive=exclusive)
    metrics["sweep"] = threshold_sweep(Y, P)
    metrics["calibration"] = calibration(Y, P)
    ids = np.array([r[4] for r in rows], dtype=np.int64)
    metrics["mistakes"] = [
        {**mistake, "row": int(ids[mistake["row"]])}
        for mistake in most_confident_mistakes(Y, P, concepts, mutually_exclusive=exclusive)
    ]
    Evaluation.objects.filter(pk=evaluation.pk, status=Status.EVALUATING).update(
        status=Status.EVALUATED,
        folds=evaluation.folds,
        folds_note=evaluation.folds_note,
        metrics=metrics,
        data=dump_scores(Scores(ids, Y, P)),
        progress=1.0,
        stage="Evaluated",
        finished=timezone.now(),
    )


@dataclass
class Scores:
    """Every scored input: its dataset-version row, labels (as `classifier.head`) and
    probabilities, row i of each array being the same input."""

    rows: np.ndarray  # DatasetVersionRow primary keys
    Y: np.ndarray
    P: np.ndarray


def dump_scores(scores: Scores) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, rows=scores.rows, Y=scores.Y, P=scores.P)
    return buffer.getvalue()


def load_scores(evaluation: Evaluation) -> Scores:
    try:
        with np.load(io.BytesIO(bytes(evaluation.data)), allow_pickle=False) as npz:
            return Scores(npz["rows"], npz["Y"], npz["P"])
    except (OSError, TypeError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise EvaluationError("the stored scores of this evaluation can't be read") from exc


@dataclass(frozen=True)
class Scored:
    """One input as the selection details show it."""

    text: str
    positive: list[str]
    negative: list[str]
    probabilities: list[tuple[str, float]]  # highest first


def scored_inputs(evaluation: Evaluation, picked: np.ndarray, limit: int = 200) -> list[Scored]:
    """The inputs at positions `picked` of the scores, with their labels and probabilities."""
    scores = load_scores(evaluation)
    concepts = list(evaluation.model_version.concepts)
    picked = picked[:limit]
    rows = DatasetVersionRow.objects.in_bulk([int(scores.rows[i]) for i in picked])
    result = []
    for i in picked:
        row = rows.get(int(scores.rows[i]))
        if row is None:
            continue
        pairs = sorted(zip(concepts, scores.P[i].tolist(), strict=True), key=lambda p: -p[1])
        result.append(Scored(row.text, row.positive, row.negative, pairs))
    return result


def cell(evaluation: Evaluation, actual: str, predicted: str) -> np.ndarray:
    """Positions of the inputs in a confusion-matrix cell: labeled `actual`, `predicted`'s
    probability the highest; most confident first."""
    scores = load_scores(evaluation)
    concepts = list(evaluation.model_version.concepts)
    if actual not in concepts or predicted not in concepts:
        raise EvaluationError("no such cell")
    a, b = concepts.index(actual), concepts.index(predicted)
    Y = known_labels(scores.Y)
    picked = np.flatnonzero((Y[:, a] == 1) & (scores.P.argmax(axis=1) == b))
    return picked[np.argsort(-scores.P[picked, b], kind="stable")]


def save_thresholds(evaluation: Evaluation, thresholds: dict[str, float]) -> None:
    """Store per-concept thresholds in the evaluated version's inference settings, which
    Try your own text and the API apply to that version."""
    version = evaluation.model_version
    for concept, value in thresholds.items():
        if concept not in version.concepts:
            raise EvaluationError(f"the model has no concept {concept!r}")
        if not 0.0 <= value <= 1.0:
            raise EvaluationError(f"the threshold for {concept!r} must be between 0 and 1")
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        inference = version.params.setdefault("inference_params", {})
        inference["concept_thresholds"] = {
            **inference.get("concept_thresholds", {}),
            **{c: round(v, 4) for c, v in thresholds.items()},
        }
        version.save(update_fields=["params"])


def thresholds_for_precision(evaluation: Evaluation, target: float) -> dict[str, float | None]:
    """Per concept, the lowest threshold (in steps of 0.01) reaching precision `target`."""
    if not 0.0 < target <= 1.0:
        raise EvaluationError("the target precision must be above 0 and at most 1")
    concepts = evaluation.model_version.concepts
    sweep = evaluation.metrics["sweep"]
    pairs = zip(concepts, sweep, strict=True)
    return {c: threshold_for_precision(counts, target) for c, counts in pairs}
