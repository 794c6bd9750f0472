"""Train a Transfer Learn model: check the parameters, queue a version, fit its head.

The worker's side (`train`) reads the dataset version's rows, takes their embeddings
from the cache (embedding only what is missing), fits a `classifier.head.ConceptHead`
("Embedding only") or a `classifier.hybrid.HybridHead` ("Auto", "Hybrid") and stores it
as plain arrays in the version row.
"""

import copy
import logging
import threading
import time
from datetime import timedelta
from enum import Enum

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from classifier import embedders, enrich
from classifier.head import ConceptHead, TrainingError
from classifier.hybrid import HybridHead
from portal import embedding
from portal.ids import as_number
from portal.models import (
    HEADS,
    Dataset,
    DatasetVersion,
    DatasetVersionRow,
    ModelVersion,
    TrainableModel,
    default_params,
)
from portal.queue import enqueue_on_commit
from portal.tasks import train_model_version

log = logging.getLogger(__name__)

Status = ModelVersion.Status
QUEUE_UNAVAILABLE = "the job queue was unavailable; nothing was trained"
TIMED_OUT = "training took longer than the time limit and was stopped"
MAX_ATTEMPTS = 3
# Versions trained before the head was a choice have no "head" and used the embedding-only
# head; a model's parameters without one train with the default (see `start_training`).
LEGACY_HEAD = "Embedding only"


class Outcome(Enum):
    DONE = "done"  # trained, failed, or already finished by another delivery
    BUSY = "busy"  # another worker is training it right now (its heartbeat is fresh)


class ParamsError(ValueError):
    """The model's parameters can't start a training run; the message says why."""


def check_params(model: TrainableModel) -> DatasetVersion:
    """The dataset version the parameters point at, or ParamsError in plain words."""
    params = model.params
    dataset = Dataset.objects.filter(app=model.app, slug=params.get("dataset_id") or "").first()
    if dataset is None:
        raise ParamsError("Choose a dataset.")
    number = str(params.get("dataset_version_id") or "")
    wanted = as_number(number)
    version = dataset.versions.filter(number=wanted).first() if wanted is not None else None
    if version is None:
        raise ParamsError(f"Choose a version of dataset {dataset.slug}.")
    if version.status != DatasetVersion.Status.READY:
        raise ParamsError(f"Version {version.number} of dataset {dataset.slug} is not ready.")
    concepts = params.get("concepts") or []
    if not concepts:
        raise ParamsError("Choose at least one concept to train.")
    missing = [c for c in concepts if c not in version.concept_counts]
    if missing:
        raise ParamsError(
            f"Concept {missing[0]!r} is not in version {version.number} of dataset {dataset.slug}."
        )
    base_model = params.get("train_params", {}).get("base_embed_model")
    if base_model not in embedders.available():
        raise ParamsError(f"Unknown base embedding model {base_model!r}.")
    head = params.get("train_params", {}).get("head", default_params()["train_params"]["head"])
    if head not in HEADS:
        raise ParamsError(f"Unknown head {head!r}: choose {', '.join(HEADS)}.")
    return version


def start_training(model: TrainableModel) -> ModelVersion:
    """Queue a new version of `model` with a frozen copy of its parameters.

    Raises ParamsError (nothing created) or QueueUnavailable (the version is FAILED).
    """
    dataset_version = check_params(model)
    params = copy.deepcopy(model.params)
    params["train_params"].setdefault("head", default_params()["train_params"]["head"])
    for attempt in range(3):
        try:
            with transaction.atomic():
                last = model.versions.aggregate(last=Max("number"))["last"] or 0
                version = ModelVersion.objects.create(
                    model=model,
                    number=last + 1,
                    params=params,
                    dataset_version=dataset_version,
                    concepts=list(model.params["concepts"]),
                )
                enqueue_on_commit(
                    train_model_version,
                    version.pk,
                    on_failure=lambda pk=version.pk: fail(pk, QUEUE_UNAVAILABLE),
                )
            return version
        except IntegrityError:  # two clicks at once took the same number
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def fail(version_id: int, reason: str, log_text: str = "") -> None:
    """Mark an unfinished version failed; a trained one is never overwritten."""
    fields = {"status": Status.FAILED, "error": reason, "finished": timezone.now()}
    if log_text:
        fields["log"] = log_text
    ModelVersion.objects.filter(pk=version_id, status__in=[Status.QUEUED, Status.TRAINING]).update(
        **fields
    )


class Run:
    """One training run: its version row, its log and its progress."""

    def __init__(self, version: ModelVersion) -> None:
        self.version = version
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.append(f"{timezone.now():%H:%M:%S} {line}")
        log.info("model version %s: %s", self.version.pk, line)

    def report(self, stage: str, progress: float) -> None:
        ModelVersion.objects.filter(pk=self.version.pk, status=Status.TRAINING).update(
            stage=stage, progress=progress, log="\n".join(self.lines)
        )

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def labels_matrix(rows: list[tuple], concepts: list[str], exclusive: bool) -> np.ndarray:
    """Y for ConceptHead: 1 positive, 0 negative, -1 no label, one column per concept.

    For one-vs-rest heads, an input labeled only with concepts outside the model is a
    negative for every concept of the model: it is known to be something else.
    """
    column = {c: i for i, c in enumerate(concepts)}
    Y = np.full((len(rows), len(concepts)), -1, dtype=np.int8)
    for i, (_, _, positive, negative) in enumerate(rows):
        for slug in negative:
            if slug in column:
                Y[i, column[slug]] = 0
        for slug in positive:
            if slug in column:
                Y[i, column[slug]] = 1
        if not exclusive and positive and not any(slug in column for slug in positive):
            Y[i, Y[i] == -1] = 0
    return Y


def enriched(params: dict) -> bool:
    """Whether the parameters add the Enrich background texts (one-vs-rest heads only)."""
    automatic = params.get("train_params", {}).get("enrich_dataset", "Automatic") == "Automatic"
    return automatic and not params.get("concepts_mutually_exclusive")


def new_head(
    params: dict, concepts: list[str], background: np.ndarray | None
) -> ConceptHead | HybridHead:
    """An unfitted head with the training parameters of a model version; `background` is
    the Enrich corpus embedded (`embedding.background_vectors`) or None."""
    train_params = params.get("train_params", {})
    settings = {
        "mutually_exclusive": bool(params.get("concepts_mutually_exclusive")),
        "C": train_params.get("C"),
        "class_weight": train_params.get("class_weight"),
        "background": background,
    }
    head = train_params.get("head", LEGACY_HEAD)
    if head == "Embedding only":
        return ConceptHead(concepts, **settings)
    if head not in HEADS:
        raise TrainingError(f"unknown head {head!r}")
    return HybridHead(
        concepts,
        **settings,
        background_texts=None if background is None else enrich.background_texts(),
        features="hybrid" if head == "Hybrid" else "auto",
    )


def fit_head(
    head: ConceptHead | HybridHead, texts: list[str], X: np.ndarray, Y: np.ndarray
) -> ConceptHead | HybridHead:
    """`head` fitted on the rows; only a hybrid head reads the texts."""
    return head.fit(texts, X, Y) if isinstance(head, HybridHead) else head.fit(X, Y)


def stale_seconds() -> float:
    """A training worker writes its heartbeat every PORTAL_HEARTBEAT_SECONDS; one this old
    belongs to a worker that died, and its version may be trained again."""
    return 6 * settings.PORTAL_HEARTBEAT_SECONDS


def claim(version_id: int) -> bool:
    """Take the version for this worker: queued, or training under a dead worker."""
    now = timezone.now()
    stale = Q(status=Status.TRAINING, heartbeat__lt=now - timedelta(seconds=stale_seconds()))
    claimed = ModelVersion.objects.filter(
        Q(status=Status.QUEUED) | stale, pk=version_id, attempts__lt=MAX_ATTEMPTS
    ).update(
        status=Status.TRAINING,
        started=now,
        heartbeat=now,
        attempts=F("attempts") + 1,
        stage="Starting",
        progress=0.0,
    )
    return claimed == 1


def train(version_id: int) -> Outcome:
    """The worker's side: claim the version, fit its head, store it, or fail with a reason."""
    if not claim(version_id):
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None or version.is_finished:
            return Outcome.DONE
        if version.attempts >= MAX_ATTEMPTS:
            fail(version_id, f"training stopped {MAX_ATTEMPTS} times without finishing")
            return Outcome.DONE
        return Outcome.BUSY
    version = ModelVersion.objects.select_related("dataset_version__dataset").get(pk=version_id)
    run = Run(version)
    if version.attempts > 1:
        run.say(f"attempt {version.attempts}: the previous worker stopped without finishing")
    with HeartbeatThread(version_id):
        try:
            _fit(run)
        except TrainingError as exc:
            run.say(f"failed: {exc}")
            fail(version_id, str(exc), run.text)
        except SoftTimeLimitExceeded:
            run.say("failed: timed out")
            fail(version_id, TIMED_OUT, run.text)
        except Exception as exc:
            log.exception("training of model version %s failed", version_id)
            run.say(f"failed: {exc.__class__.__name__}: {exc}")
            fail(version_id, f"training failed: {exc}", run.text)
    return Outcome.DONE


class HeartbeatThread:
    """A thread that keeps the version's heartbeat fresh while this worker trains it."""

    def __init__(self, version_id: int) -> None:
        self.version_id = version_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.beat, daemon=True)

    def beat(self) -> None:
        try:
            while not self.stopped.wait(settings.PORTAL_HEARTBEAT_SECONDS):
                try:
                    ModelVersion.objects.filter(pk=self.version_id, status=Status.TRAINING).update(
                        heartbeat=timezone.now()
                    )
                except DatabaseError as exc:  # a missed beat is harmless; the next may pass
                    log.warning("heartbeat of model version %s: %s", self.version_id, exc)
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> "HeartbeatThread":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join()


def _fit(run: Run) -> None:
    version = run.version
    params = version.params
    train_params = params.get("train_params", {})
    base_model = train_params.get("base_embed_model") or embedders.DEFAULT_MODEL
    concepts = list(version.concepts)
    exclusive = bool(params.get("concepts_mutually_exclusive"))
    if version.dataset_version is None:
        raise TrainingError("the dataset version was deleted")
    rows = list(
        DatasetVersionRow.objects.filter(version=version.dataset_version)
        .order_by("pk")
        .values_list("text", "text_hash", "positive", "negative")
    )
    run.say(
        f"dataset {version.dataset_version.dataset.slug} v{version.dataset_version.number}: "
        f"{len(rows)} inputs; concepts {', '.join(concepts)}"
        f"{' (mutually exclusive)' if exclusive else ''}; base model {base_model}"
    )
    Y = labels_matrix(rows, concepts, exclusive)
    labeled = (Y != -1).any(axis=1)
    rows = [row for row, keep in zip(rows, labeled, strict=True) if keep]
    Y = Y[labeled]
    if not rows:
        raise TrainingError(
            f"no input in version {version.dataset_version.number} is labeled with "
            f"{' or '.join(concepts)}"
        )

    started = time.perf_counter()
    total = len(rows)

    def embedding_progress(done: int, missing: int) -> None:
        run.report(f"Embedding {done:,} of {missing:,} new texts", 0.8 * done / missing)

    run.report(f"Embedding {total:,} texts", 0.0)
    X = embedding.vectors(
        base_model, [r[0] for r in rows], [r[1] for r in rows], progress=embedding_progress
    )
    background = None
    if enriched(params):

        def background_progress(done: int, missing: int) -> None:
            # Only the first training with a base model embeds the corpus.
            run.report(f"Embedding background texts: {done:,} of {missing:,}", 0.8 * done / missing)

        background = embedding.background_vectors(base_model, progress=background_progress)
    elif params.get("train_params", {}).get("enrich_dataset", "Automatic") == "Automatic":
        run.say(
            "Enrich dataset: not used, the concepts are mutually exclusive (every text is one "
            "of them, so there is no 'none of these' to learn from generic texts)"
        )
    embed_seconds = time.perf_counter() - started
    run.say(f"embeddings ready in {embed_seconds:.2f} s")

    run.report("Fitting", 0.85)
    started = time.perf_counter()
    head = fit_head(new_head(params, concepts, background), [r[0] for r in rows], X, Y)
    fit_seconds = time.perf_counter() - started
    for line in head.fit_log_:
        run.say(line)
    run.say(f"fitted in {fit_seconds:.2f} s")
    finished = ModelVersion.objects.filter(pk=version.pk, status=Status.TRAINING).update(
        status=Status.TRAINED,
        head=head.dumps(),
        embed_seconds=embed_seconds,
        fit_seconds=fit_seconds,
        progress=1.0,
        stage="Trained",
        log=run.text,
        finished=timezone.now(),
    )
    if not finished:
        raise RuntimeError("the version was no longer training")
