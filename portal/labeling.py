"""Label next: one unlabeled input of a dataset at a time, the one the model is least sure of.

    card = pick(dataset, suggesting.latest_version(app, dataset), skipped=set())
    accept(card.input, revision, chosen, model_concepts, user)  # positives and negatives

Picking scores a bounded random sample of the dataset's unlabeled inputs (up to `SAMPLE`)
with the latest model, rather than ranking every unlabeled input or caching a ranking per
model version: a step then costs the same on a dataset of 500 or 500,000 inputs, and the
ranking is never stale after labels or a new model. On a dataset smaller than the sample
the pick is exactly the least certain input; on a larger one it is the least certain of
2,000 random ones, which uncertainty sampling tolerates well. Inputs are embedded in the
background when they arrive; those still waiting are left out of the sample, unless fewer
than `EMBED_NOW` are ready, so a step never embeds more than a few texts itself. Without
a trained model the pick is random.

Where a person is in a dataset (skipped inputs, what undo can take back) lives in their
session, per app and dataset: no migration, and nothing shared between people.
"""

import random
from dataclasses import dataclass, field

from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from classifier.active import most_uncertain
from portal import embedding, labels, suggesting, training, versions
from portal.models import (
    Annotation,
    Concept,
    Dataset,
    DatasetVersion,
    Input,
    ModelVersion,
    TrainableModel,
)
from portal.queue import QueueUnavailable

SAMPLE = 2000
EMBED_NOW = 32
# Rows per "IN (...)" list: SQLite allows 999 parameters a statement.
BATCH = 900
# Steps kept for undo, and skipped inputs remembered, per app and dataset.
HISTORY = 50
MAX_SKIPPED = 1000
# Automatic retraining after every N accepted inputs; 0 is off.
RETRAIN_CHOICES = (0, 10, 25, 50)


class LabelingError(ValueError):
    """The request can't be applied; the message says why, and nothing was changed."""


@dataclass
class Card:
    """One input to label, with the model's view of it."""

    input: Input
    suggested: set[str] = field(default_factory=set)  # concept IDs pre-selected
    probabilities: dict[str, float] = field(default_factory=dict)  # concept ID -> 0..1
    uncertain: bool = False  # picked by the model (else at random)


def unlabeled(dataset: Dataset) -> QuerySet[Input]:
    """The dataset's inputs without any label, positive or negative."""
    return Input.objects.filter(app_id=dataset.app_id, datasets=dataset).unlabeled()


def _load(ids: list[int]) -> list[Input]:
    """The inputs with these IDs, in the order of `ids`."""
    found: dict[int, Input] = {}
    for start in range(0, len(ids), BATCH):
        batch = Input.objects.filter(pk__in=ids[start : start + BATCH])
        found.update((item.pk, item) for item in batch.only("pk", "text", "text_hash", "revision"))
    return [found[pk] for pk in ids if pk in found]


def suggestion(version: ModelVersion, probabilities) -> set[str]:
    """The concepts the model would give: the most probable one for mutually exclusive
    concepts, every concept at 0.5 or above otherwise."""
    names = suggesting.concepts(version)
    if not names:
        return set()
    if suggesting.exclusive(version):
        return {names[int(probabilities.argmax())]}
    return {name for name, p in zip(names, probabilities, strict=True) if p >= 0.5}


def _card(version: ModelVersion, item: Input, probabilities, uncertain: bool) -> Card:
    names = suggesting.concepts(version)
    return Card(
        input=item,
        suggested=suggestion(version, probabilities),
        probabilities={name: float(p) for name, p in zip(names, probabilities, strict=True)},
        uncertain=uncertain,
    )


def _embedded_first(version: ModelVersion, sample: list[Input]) -> list[Input]:
    """The inputs of `sample` whose embeddings are cached, topped up to `EMBED_NOW` with
    others (embedded during this request)."""
    cached = embedding.cached_hashes(
        suggesting.base_model(version), [item.text_hash for item in sample]
    )
    ready = [item for item in sample if item.text_hash in cached]
    waiting = [item for item in sample if item.text_hash not in cached]
    return ready + waiting[: max(EMBED_NOW - len(ready), 0)]


def pick(dataset: Dataset, version: ModelVersion | None, skipped: set[int]) -> Card | None:
    """The next input to label (at random without a model), or None when every
    unlabeled input was skipped (or there is none)."""
    ids = [pk for pk in unlabeled(dataset).values_list("pk", flat=True) if pk not in skipped]
    if not ids:
        return None
    # The shuffle also breaks ties between equally uncertain inputs.
    size = min(SAMPLE if version is not None else 1, len(ids))
    sample = _load(random.sample(ids, size))
    if not sample:
        return None
    if version is None:
        return Card(input=sample[0])
    sample = _embedded_first(version, sample)
    probabilities = suggesting.scores(version, sample)
    first = int(most_uncertain(probabilities, suggesting.exclusive(version))[0])
    return _card(version, sample[first], probabilities[first], uncertain=True)


def card_for(item: Input, version: ModelVersion | None) -> Card:
    """The card of a given input (one brought back by undo)."""
    if version is None:
        return Card(input=item)
    return _card(version, item, suggesting.scores(version, [item])[0], uncertain=False)


def accept(
    item: Input,
    revision: int,
    chosen: list[Concept],
    model_concepts: list[Concept],
    author,
) -> list[int]:
    """Save the chosen concepts as positive labels, and the model's other concepts as
    negative ones; returns the IDs of the concepts labeled.

    Negatives for the model's unselected concepts: the person saw the model's suggestion
    for each of them and left it off, which is exactly the information that corrects a
    false positive. A one-vs-rest head can't infer it (an input labeled "spam" says
    nothing about "urgent"), and "none of these" becomes a label instead of an input that
    keeps coming back. Concepts outside the model get no negative: the person was not
    asked about them, and the app may hold many. So with no model yet, an accept needs at
    least one concept.

    Raises LabelingError, saving nothing, if the input was labeled or changed since
    `revision` was read.
    """
    negatives = [c for c in model_concepts if c not in chosen]
    if not chosen and not negatives:
        raise LabelingError("Select at least one concept, or skip this input.")
    with transaction.atomic():
        if item.annotations.exists():
            raise LabelingError(
                "This input was labeled meanwhile (in another tab or over the API): "
                "nothing was saved."
            )
        steps = [(c, Annotation.POSITIVE) for c in chosen] + [
            (c, Annotation.NEGATIVE) for c in negatives
        ]
        for step, (concept, value) in enumerate(steps):
            if not labels.set_label(item, concept, value, revision + step, author):
                raise LabelingError(
                    "This input changed meanwhile (in another tab or over the API): "
                    "nothing was saved."
                )
    return [concept.pk for concept, _ in steps]


def take_back(item: Input, revision: int, concept_ids: list[int]) -> None:
    """Remove the labels an accept saved, if nobody changed the input since."""
    concepts = list(Concept.objects.filter(app_id=item.app_id, pk__in=concept_ids))
    with transaction.atomic():
        for step, concept in enumerate(concepts):
            if not labels.set_label(item, concept, None, revision + step, None):
                raise LabelingError(
                    "This input's labels changed since you saved them: nothing was undone."
                )


def labeled_today(dataset: Dataset, user) -> int:
    """Inputs of the dataset that `user` labeled by hand since midnight (local time): not
    the labels of uploaded files or the API."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        Annotation.objects.filter(
            author=user,
            by_hand=True,
            created__gte=midnight,
            input__datasets=dataset,
            input__app_id=dataset.app_id,
        )
        .values("input")
        .distinct()
        .count()
    )


class Progress:
    """A person's place in one dataset of an app, kept in their session."""

    def __init__(self, session: SessionBase, dataset: Dataset) -> None:
        self.session = session
        self.key = f"label-next:{dataset.app_id}:{dataset.pk}"
        state = session.get(self.key) or {}
        self.skipped: list[int] = list(state.get("skipped", []))
        self.history: list[dict] = list(state.get("history", []))
        # Automatic retraining: every how many accepts (0: off), how many since the last
        # one, and the dataset version being snapshotted for the next one.
        self.retrain_every: int = state.get("retrain_every", 0)
        self.since_retrain: int = state.get("since_retrain", 0)
        self.snapshot: int | None = state.get("snapshot")

    def save(self) -> None:
        self.session[self.key] = {
            "skipped": self.skipped[-MAX_SKIPPED:],
            "history": self.history[-HISTORY:],
            "retrain_every": self.retrain_every,
            "since_retrain": self.since_retrain,
            "snapshot": self.snapshot,
        }

    def accepted(self, item: Input, concept_ids: list[int]) -> None:
        self.history.append(
            {
                "action": "accept",
                "input": item.pk,
                "concepts": concept_ids,
                "revision": item.revision,
            }
        )
        self.since_retrain += 1
        self.save()

    def skip(self, item: Input) -> None:
        if item.pk not in self.skipped:
            self.skipped.append(item.pk)
        self.history.append({"action": "skip", "input": item.pk})
        self.save()

    def forget_skipped(self) -> None:
        self.skipped = []
        self.history = [step for step in self.history if step["action"] != "skip"]
        self.save()

    def undo(self, dataset: Dataset) -> tuple[Input, list[int] | None]:
        """Take back the last accept or skip; returns the input to show again and the
        concepts that were chosen for it (None for a skip)."""
        if not self.history:
            raise LabelingError("Nothing to undo.")
        # A step that can't be undone is dropped all the same, so the next undo goes on.
        step = self.history.pop()
        self.save()
        item = Input.objects.filter(
            app_id=dataset.app_id, datasets=dataset, pk=step["input"]
        ).first()
        if item is None:
            raise LabelingError("That input was deleted or left the dataset: nothing to undo.")
        chosen: list[int] | None = None
        if step["action"] == "accept":
            positive = set(
                item.annotations.filter(value=Annotation.POSITIVE).values_list(
                    "concept_id", flat=True
                )
            )
            chosen = [pk for pk in step["concepts"] if pk in positive]
            take_back(item, step["revision"], step["concepts"])
        elif item.pk in self.skipped:
            self.skipped.remove(item.pk)
            self.save()
        item.refresh_from_db(fields=["revision"])
        return item, chosen


# Automatic retraining


def in_training(model: TrainableModel) -> ModelVersion | None:
    """The model's version that is queued or training, if any."""
    busy = [ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING]
    return model.versions.filter(status__in=busy).defer("head", "log").first()


def retrain(progress: Progress, dataset: Dataset, latest: ModelVersion | None) -> str:
    """Move automatic retraining on by one step, after an accept; returns what to tell
    the person ("" when there is nothing to say).

    Training reads a dataset version, so a retrain is two steps through the usual
    paths: once `retrain_every` new labels are in, `versions.create_version` bookmarks
    the dataset (its snapshot is queued); a later step, once that version is READY,
    points the model at it and calls `training.start_training`. Both raise
    QueueUnavailable when the queue is down, which is said and stops this round. A model
    with a version queued or training is never given another one.
    """
    if not progress.retrain_every or latest is None:
        return ""
    model = latest.model
    if latest.dataset_version is None or latest.dataset_version.dataset_id != dataset.pk:
        return f"Automatic retraining needs a model trained on dataset {dataset.slug}."
    running = in_training(model)
    if progress.snapshot is not None:
        return _train_on_snapshot(progress, dataset, model, running)
    if running is not None:
        return f"Model {model.slug} v{running.number} is training on your earlier labels."
    if progress.since_retrain < progress.retrain_every:
        return ""
    progress.since_retrain = 0
    progress.save()
    try:
        snapshot = versions.create_version(dataset)
    except QueueUnavailable as exc:
        return f"{exc} Automatic retraining did not start."
    progress.snapshot = snapshot.pk
    progress.save()
    return f"Retraining {model.slug}: bookmarking your labels as version {snapshot.number}."


def _train_on_snapshot(
    progress: Progress, dataset: Dataset, model: TrainableModel, running: ModelVersion | None
) -> str:
    snapshot = DatasetVersion.objects.filter(pk=progress.snapshot, dataset=dataset).first()
    if snapshot is None or snapshot.status == DatasetVersion.Status.FAILURE:
        progress.snapshot = None
        progress.save()
        reason = f" ({snapshot.error})" if snapshot is not None and snapshot.error else ""
        return f"Automatic retraining stopped: the new dataset version failed{reason}."
    if snapshot.status != DatasetVersion.Status.READY or running is not None:
        return f"Retraining {model.slug}: waiting for version {snapshot.number} of {dataset.slug}."
    progress.snapshot = None
    progress.save()
    if model.params.get("dataset_id") != dataset.slug:
        return f"Model {model.slug} is now set up on another dataset: it was not retrained."
    params = {**model.params, "dataset_version_id": str(snapshot.number)}
    try:
        # One transaction: a ParamsError leaves the model's parameters as they were.
        with transaction.atomic():
            model.params = params
            model.save(update_fields=["params"])
            version = training.start_training(model)
    except training.ParamsError as exc:
        return f"Automatic retraining stopped: {exc}"
    except QueueUnavailable as exc:
        return f"{exc} Model {model.slug} was not retrained."
    return f"Retraining {model.slug}: version {version.number} is queued."
