"""Apps, their concepts, datasets and dataset versions: the same forms and domain functions
as the browser's pages."""

from datetime import datetime
from typing import Annotated

from django.http import HttpRequest
from ninja import Path, Router, Schema, Status

from portal import versions
from portal.access import get_app, get_dataset, get_version
from portal.api.schemas import Forbid, saved
from portal.forms import AppForm, ConceptForm, DatasetForm
from portal.models import App, Concept, Dataset, DatasetVersion
from portal.views.concepts import with_counts as concepts_with_counts
from portal.views.datasets import with_counts as datasets_with_counts

router = Router(tags=["Apps"])

# Version numbers and primary keys in paths: positive and within a 64-bit integer, so
# that a number no database could hold is refused before it reaches a query.
Number = Annotated[int, Path(ge=1, le=2**63 - 1)]


class AppIn(Forbid):
    id: str
    description: str = ""


class AppOut(Schema):
    id: str
    description: str
    base_model: str
    created_at: datetime
    input_count: int
    labeled_count: int
    concept_count: int
    dataset_count: int


def _app_json(app: App) -> dict:
    counts = app.counts()
    return {
        "id": app.slug,
        "description": app.description,
        "base_model": app.base_model,
        "created_at": app.created,
        "input_count": counts["inputs"],
        "labeled_count": counts["labeled"],
        "concept_count": counts["concepts"],
        "dataset_count": counts["datasets"],
    }


@router.get("/apps", response=list[AppOut], url_name="api-apps")
def list_apps(request: HttpRequest) -> list[dict]:
    """Your apps, by ID."""
    return [_app_json(app) for app in App.objects.filter(owner=request.user)]


@router.post("/apps", response={201: AppOut})
def create_app(request: HttpRequest, body: AppIn) -> Status:
    """A new text app; its ID is unique among your apps, whatever its case."""
    data = {"slug": body.id, "description": body.description, "input_type": "text"}
    app = saved(AppForm(data, owner=request.user), f"You already have an app called “{body.id}”.")
    return Status(201, _app_json(app))


@router.get("/apps/{app_id}", response=AppOut, url_name="api-app")
def get_app_detail(request: HttpRequest, app_id: str) -> dict:
    return _app_json(get_app(request, app_id))


@router.delete("/apps/{app_id}", response={204: None})
def delete_app(request: HttpRequest, app_id: str) -> Status:
    """The app and everything in it: inputs, concepts, datasets, models."""
    get_app(request, app_id).delete()
    return Status(204, None)


class ConceptIn(Forbid):
    id: str
    name: str = ""


class ConceptOut(Schema):
    id: str
    name: str
    created_at: datetime
    positive_count: int
    negative_count: int


def _concept_json(concept: Concept) -> dict:
    """`concept` annotated by concepts_with_counts."""
    return {
        "id": concept.slug,
        "name": concept.name,
        "created_at": concept.created,
        "positive_count": concept.positives,
        "negative_count": concept.negatives,
    }


@router.get("/apps/{app_id}/concepts", response=list[ConceptOut], tags=["Concepts"])
def list_concepts(request: HttpRequest, app_id: str) -> list[dict]:
    """The app's concepts with how many inputs are labeled positive and negative."""
    app = get_app(request, app_id)
    # Meta.ordering doesn't apply to a query with counts (GROUP BY): order it here.
    concepts = concepts_with_counts(app.concepts.order_by("slug"))
    return [_concept_json(c) for c in concepts]


@router.post("/apps/{app_id}/concepts", response={201: ConceptOut}, tags=["Concepts"])
def create_concept(request: HttpRequest, app_id: str, body: ConceptIn) -> Status:
    """A new concept; its name defaults to its ID."""
    app = get_app(request, app_id)
    form = ConceptForm({"slug": body.id, "name": body.name}, app=app)
    concept = saved(form, f"This app already has a concept called “{body.id}”.")
    return Status(
        201, _concept_json(concepts_with_counts(Concept.objects.filter(pk=concept.pk)).get())
    )


class DatasetIn(Forbid):
    id: str
    description: str = ""


class VersionOut(Schema):
    id: int
    status: str
    created_at: datetime
    input_count: int
    concept_counts: dict[str, dict[str, int]]
    error: str


class DatasetOut(Schema):
    id: str
    description: str
    created_at: datetime
    input_count: int
    labeled_count: int
    version_count: int


class DatasetDetailOut(DatasetOut):
    versions: list[VersionOut]


def _version_json(version: DatasetVersion) -> dict:
    return {
        "id": version.number,
        "status": version.status,
        "created_at": version.created,
        "input_count": version.input_count,
        "concept_counts": version.concept_counts,
        "error": version.error,
    }


def _dataset_json(dataset: Dataset) -> dict:
    """`dataset` annotated by datasets_with_counts."""
    return {
        "id": dataset.slug,
        "description": dataset.description,
        "created_at": dataset.created,
        "input_count": dataset.input_count,
        "labeled_count": dataset.labeled_count,
        "version_count": dataset.version_count,
    }


def _dataset_detail(dataset: Dataset) -> dict:
    counted = datasets_with_counts(Dataset.objects.filter(pk=dataset.pk)).get()
    return {
        **_dataset_json(counted),
        "versions": [_version_json(v) for v in dataset.versions.all()],
    }


@router.get("/apps/{app_id}/datasets", response=list[DatasetOut], tags=["Datasets"])
def list_datasets(request: HttpRequest, app_id: str) -> list[dict]:
    app = get_app(request, app_id)
    return [_dataset_json(d) for d in datasets_with_counts(app.datasets.all())]


@router.post("/apps/{app_id}/datasets", response={201: DatasetDetailOut}, tags=["Datasets"])
def create_dataset(request: HttpRequest, app_id: str, body: DatasetIn) -> Status:
    app = get_app(request, app_id)
    form = DatasetForm({"slug": body.id, "description": body.description}, app=app)
    dataset = saved(form, f"This app already has a dataset called “{body.id}”.")
    return Status(201, _dataset_detail(dataset))


@router.get("/apps/{app_id}/datasets/{dataset_id}", response=DatasetDetailOut, tags=["Datasets"])
def get_dataset_detail(request: HttpRequest, app_id: str, dataset_id: str) -> dict:
    """The dataset with its input counts and its versions, newest first."""
    return _dataset_detail(get_dataset(get_app(request, app_id), dataset_id))


@router.get(
    "/apps/{app_id}/datasets/{dataset_id}/versions", response=list[VersionOut], tags=["Datasets"]
)
def list_versions(request: HttpRequest, app_id: str, dataset_id: str) -> list[dict]:
    """The dataset's versions, newest first."""
    dataset = get_dataset(get_app(request, app_id), dataset_id)
    return [_version_json(v) for v in dataset.versions.all()]


@router.post(
    "/apps/{app_id}/datasets/{dataset_id}/versions", response={201: VersionOut}, tags=["Datasets"]
)
def create_version(request: HttpRequest, app_id: str, dataset_id: str) -> Status:
    """A snapshot of the dataset's inputs and labels as they are now. It starts PENDING;
    poll it until READY (or FAILURE). 503 if the job queue is down (the version is then
    FAILURE, not left waiting)."""
    dataset = get_dataset(get_app(request, app_id), dataset_id)
    return Status(201, _version_json(versions.create_version(dataset)))


@router.get(
    "/apps/{app_id}/datasets/{dataset_id}/versions/{version_id}",
    response=VersionOut,
    tags=["Datasets"],
)
def get_version_detail(
    request: HttpRequest, app_id: str, dataset_id: str, version_id: Number
) -> dict:
    dataset = get_dataset(get_app(request, app_id), dataset_id)
    return _version_json(get_version(dataset, version_id))
