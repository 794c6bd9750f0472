"""The inputs explorer's filters: from a query string to a queryset, and back to links."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from portal.access import get_concept, get_dataset
from portal.models import Annotation, App, Concept, Dataset, Input

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
        inputs.defer("metadata", "text_hash")
        .prefetch_related(
            Prefetch("annotations", queryset=labels),
            Prefetch("datasets", queryset=Dataset.objects.only("id", "slug")),
        )
        .order_by("-created", "-id")  # the input_app_created index
    )
