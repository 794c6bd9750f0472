"""The inputs explorer's filters (from a query string to a queryset, and back to links)
and its suggestions (the latest model's concepts for unlabeled inputs)."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import numpy as np
from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from classifier.hybrid import head_proba
from portal import embedding, prediction, suggesting
from portal.access import get_concept, get_dataset
from portal.labels import label_inputs
from portal.models import Annotation, App, Concept, Dataset, Input, ModelVersion

PAGE_SIZE = 50
STATES = {"positive": "Positive", "negative": "Negative", "unlabeled": "Unlabeled"}


@dataclass(frozen=True)
class Filters:
    """What the explorer shows. `state` without a concept applies to any concept, so
    "unlabeled" alone means inputs with no labels at all."""

    q: str = ""
    dataset: Dataset | None = None
    concept: Concept | None = None
    state: str = ""

    @classmethod
    def from_data(cls, app: App, data) -> "Filters":
        """Read the filters from request.GET (the page) or request.POST (bulk actions)."""
        dataset_id, concept_id = data.get("dataset", ""), data.get("concept", "")
        state = data.get("state", "")
        return cls(
            q=data.get("q", "").strip()[:200],
            dataset=get_dataset(app, dataset_id) if dataset_id else None,
            concept=get_concept(app, concept_id) if concept_id else None,
            state=state if state in STATES else "",
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.dataset or self.concept or self.state)

    def params(self) -> dict[str, str]:
        params = {
            "q": self.q,
            "dataset": self.dataset.slug if self.dataset else "",
            "concept": self.concept.slug if self.concept else "",
            "state": self.state,
        }
        return {key: value for key, value in params.items() if value}

    def querystring(self, **extra) -> str:
        params = self.params() | {key: str(value) for key, value in extra.items()}
        return f"?{urlencode(params)}" if params else ""

    def apply(self, inputs: QuerySet[Input]) -> QuerySet[Input]:
        if self.q:
            inputs = inputs.filter(text__icontains=self.q)
        if self.dataset:
            inputs = inputs.filter(datasets=self.dataset)
        value = {"positive": Annotation.POSITIVE, "negative": Annotation.NEGATIVE}.get(self.state)
        if self.concept and self.state != "unlabeled":
            # Driven by the annotation_concept_value index: the concept's labels are few.
            labels = Annotation.objects.filter(concept=self.concept)
            if value is not None:
                labels = labels.filter(value=value)
            return inputs.filter(pk__in=labels.values("input"))
        labels = Annotation.objects.filter(input=OuterRef("pk"))
        if self.concept:
            labels = labels.filter(concept=self.concept)
        if self.state == "unlabeled":
            return inputs.filter(~Exists(labels))
        if value is not None:
            return inputs.filter(Exists(labels.filter(value=value)))
        return inputs


def matching_inputs(app: App, filters: Filters) -> QuerySet[Input]:
    return filters.apply(Input.objects.filter(app=app))


def with_row_data(inputs: QuerySet[Input]) -> QuerySet[Input]:
    """Everything a row shows, fetched in three queries however many rows there are."""
    labels = Annotation.objects.select_related("concept").order_by("concept__slug")
    return (
        inputs.defer("metadata")
        .prefetch_related(
            Prefetch("annotations", queryset=labels),
            Prefetch("datasets", queryset=Dataset.objects.only("id", "slug")),
        )
        .order_by("-created", "-id")  # the input_app_created index
    )


# Suggestions: the latest model's concepts for unlabeled inputs.

# A concept is suggested from this probability up, or from the version's own minimum value
# or evaluated threshold when that is set (a threshold saved from an evaluation wins).
SUGGESTION_MIN = 0.5
# Inputs scored per step when accepting suggestions for a whole filter.
SUGGEST_BATCH = 500


@dataclass(frozen=True)
class Suggestion:
    concept: str
    value: float


@dataclass(frozen=True)
class Accepted:
    inputs: int  # inputs that got at least one label
    labels: int
    not_embedded: int  # unlabeled inputs skipped because their embedding isn't cached yet


def suggesting_version(app: App, filters: Filters) -> ModelVersion | None:
    """The version suggestions come from: the latest trained one, on the filter's dataset
    if one was trained on it; None when its head can't be used."""
    version = suggesting.latest_version(app, filters.dataset)
    if version is None:
        return None
    try:
        prediction.cached_head(version)
        suggestion_settings(version)
    except prediction.PredictionError:
        return None
    return version


def suggestion_settings(version: ModelVersion) -> prediction.InferenceSettings:
    """The version's inference settings with a minimum value of at least SUGGESTION_MIN."""
    own = prediction.inference_settings(version, None)
    return replace(own, min_value=max(own.min_value, SUGGESTION_MIN))


def suggest(
    version: ModelVersion, inputs: Sequence[Input], concepts: Collection[str]
) -> tuple[dict[int, list[Suggestion]], int]:
    """({input pk: its suggestions, most likely first}, how many inputs were scored).

    Only inputs whose embedding is cached are scored: the others get none rather than
    making the page wait for the embedder.
    """
    embedded = embedding.cached(suggesting.base_model(version), [i.text_hash for i in inputs])
    ready = [i for i in inputs if i.text_hash in embedded]
    if not ready:
        return {}, 0
    head = prediction.cached_head(version)
    X = np.vstack([embedded[i.text_hash] for i in ready]).astype(np.float32, copy=False)
    probabilities = head_proba(head, [i.text for i in ready], X)
    shown = suggestion_settings(version)
    found = {}
    for item, row in zip(ready, probabilities, strict=True):
        values = [
            Suggestion(slug, round(float(value), 3))
            for slug, value in zip(head.concepts, row, strict=True)
            if slug in concepts and shown.shows(slug, value)
        ]
        values.sort(key=lambda s: s.value, reverse=True)
        if values:
            found[item.pk] = values[: shown.max_concepts]
    return found, len(ready)


def add_suggestions(
    version: ModelVersion | None, rows: list[Input], concepts: Collection[str]
) -> None:
    """Give each unlabeled row of a page its `suggestions` (rows with labels get none)."""
    unlabeled = [row for row in rows if not row.annotations.all()]
    found = suggest(version, unlabeled, concepts)[0] if version and unlabeled else {}
    for row in rows:
        row.suggestions = found.get(row.pk, [])


def accept_suggestions(
    version: ModelVersion, inputs: QuerySet[Input], threshold: float, author
) -> Accepted:
    """Label each unlabeled input of `inputs` with its suggestions of `threshold` or more.

    Scored SUGGEST_BATCH inputs at a time in primary-key order, so memory stays bounded
    and labels written for one batch can't change which inputs the next one reads.
    """
    concepts = {c.slug: c for c in Concept.objects.filter(app_id=version.model.app_id)}
    candidates = (
        inputs.filter(~Exists(Annotation.objects.filter(input=OuterRef("pk"))))
        .only("pk", "text", "text_hash")
        .order_by("pk")
    )
    labeled = total = not_embedded = 0
    last = 0
    while batch := list(candidates.filter(pk__gt=last)[:SUGGEST_BATCH]):
        last = batch[-1].pk
        found, scored = suggest(version, batch, concepts)
        not_embedded += len(batch) - scored
        by_concept: dict[str, list[int]] = {}
        for pk, suggestions in found.items():
            chosen = [s.concept for s in suggestions if s.value >= threshold]
            labeled += bool(chosen)
            for slug in chosen:
                by_concept.setdefault(slug, []).append(pk)
        for slug, ids in by_concept.items():
            total += label_inputs(
                Input.objects.filter(pk__in=ids), concepts[slug], Annotation.POSITIVE, author
            )
    return Accepted(labeled, total, not_embedded)
