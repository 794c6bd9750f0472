"""Inputs of an app: upload (JSON or a CSV file), list and filter, relabel, delete.

Uploads go through `importing` like the browser's: all or nothing, unknown concepts are
created, duplicates are skipped, embedding is scheduled; a CSV file with many rows
becomes a background import job.
"""

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.paginator import EmptyPage, Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError, ValidationError
from pydantic import AfterValidator, Field, StringConstraints, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from portal import importing, labels
from portal.access import get_app, get_concept, get_dataset, get_import_job, get_input
from portal.api.apps import Number
from portal.api.schemas import Forbid
from portal.csv_io import (
    MAX_EXTERNAL_ID_LENGTH,
    MAX_METADATA_DEPTH,
    MAX_UPLOAD_CONCEPTS,
    ParsedRow,
    holds_nul,
    json_depth,
    too_many_concepts,
    upload_too_large,
)
from portal.explorer import PAGE_SIZE, Filters, matching_inputs, with_row_data
from portal.ids import ID_HELP, is_valid_id
from portal.models import Annotation, App, Concept, ImportJob, Input
from portal.queue import ensure_available

router = Router(tags=["Inputs"])

CONFLICT = "the input's labels changed meanwhile; get it again and send its new revision"


def _concept_ids(values: list[str]) -> list[str]:
    for value in values:
        if not is_valid_id(value):
            message = "{value} is not a valid concept ID. " + ID_HELP
            raise PydanticCustomError("concept_id", message, {"value": repr(value)})
    return list(dict.fromkeys(values))


def _check_sides(concepts: list[str] | None, negative_concepts: list[str] | None) -> None:
    both = set(concepts or ()).intersection(negative_concepts or ())
    if both:
        message = "concept {concept} is both positive and negative"
        raise PydanticCustomError("concept_on_both_sides", message, {"concept": repr(min(both))})


ConceptIds = Annotated[list[str], AfterValidator(_concept_ids)]
# The body's own nesting: {"inputs": [{"metadata": ...}]}.
MAX_BODY_DEPTH = MAX_METADATA_DEPTH + 3


def _no_nul(value: Any) -> Any:
    if holds_nul(value):
        raise PydanticCustomError("nul", "contains a NUL character (databases refuse it)")
    return value


def _text(value: str) -> str:
    text, limit = value.strip(), settings.PORTAL_MAX_TEXT_LENGTH
    if not text:
        raise PydanticCustomError("empty_text", "the text is empty")
    if len(text) > limit:
        message = "the text is {length} characters long; the limit is {limit}"
        raise PydanticCustomError("long_text", message, {"length": len(text), "limit": limit})
    if "\x00" in text:
        raise PydanticCustomError("nul", "the text contains a NUL character (databases refuse it)")
    return text


class InputIn(Forbid):
    text: Annotated[str, AfterValidator(_text)]
    concepts: ConceptIds = []
    negative_concepts: ConceptIds = []
    id: Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=MAX_EXTERNAL_ID_LENGTH),
        AfterValidator(_no_nul),
    ] = ""
    metadata: Annotated[dict[str, Any], AfterValidator(_no_nul)] = {}

    @model_validator(mode="after")
    def _check_labels(self) -> "InputIn":
        _check_sides(self.concepts, self.negative_concepts)
        return self


class InputsIn(Forbid):
    inputs: list[InputIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_ids(self) -> "InputsIn":
        first_of_id: dict[str, int] = {}
        for index, item in enumerate(self.inputs):
            if item.id and first_of_id.setdefault(item.id, index) != index:
                message = "input ID {id} appears twice: inputs.{first} and inputs.{index}"
                context = {"id": repr(item.id), "first": first_of_id[item.id], "index": index}
                raise PydanticCustomError("duplicate_id", message, context)
        concepts = {c for item in self.inputs for c in (*item.concepts, *item.negative_concepts)}
        if len(concepts) > MAX_UPLOAD_CONCEPTS:
            raise PydanticCustomError("too_many_concepts", too_many_concepts())
        return self


def _inline_refs(schema: dict) -> dict:
    """A pydantic JSON schema with its $defs written in place: an OpenAPI body given by
    hand (below) has no components section to point into."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


# The upload reads its body itself, JSON or multipart, so OpenAPI is told of both here.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline_refs(InputsIn.model_json_schema())},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


class ImportOut(Schema):
    created: int
    skipped: int


class JobOut(Schema):
    id: int
    status: str
    filename: str
    rows_total: int
    rows_done: int
    created: int
    skipped: int
    errors: list[str]
    created_at: datetime
    finished_at: datetime | None
    url: str


def _job_json(app: App, job: ImportJob) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "filename": job.filename,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "created": job.created_count,
        "skipped": job.skipped_count,
        "errors": job.errors,
        "created_at": job.created,
        "finished_at": job.finished,
        "url": reverse("api:api-import-job", kwargs={"app_id": app.slug, "job_id": job.pk}),
    }


def _reject_constant(name: str) -> None:
    # Python's json reads NaN and Infinity, but they are not JSON and databases refuse them.
    raise ValueError(f"{name} is not JSON")


def _json_inputs(request: HttpRequest) -> InputsIn:
    try:
        body = request.body.decode()
    except RequestDataTooBig:
        raise _too_large() from None
    except UnicodeDecodeError:
        raise HttpError(400, "the body is not valid UTF-8") from None
    if json_depth(body, stop_after=MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
        message = f"the body is nested too deeply: metadata may nest {MAX_METADATA_DEPTH} levels"
        raise HttpError(400, message)
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except ValueError:
        raise HttpError(400, "the body is not valid JSON") from None
    try:
        body = InputsIn.model_validate(data)
    except PydanticValidationError as exc:
        # Located as django-ninja locates a body's errors, for the API's readable message.
        raise ValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    limit = settings.PORTAL_BACKGROUND_IMPORT_ROWS
    if len(body.inputs) > limit:
        message = f"at most {limit:,} inputs per JSON request; upload more as a CSV file"
        raise HttpError(413, message)
    return body


def _too_large() -> HttpError:
    limit = settings.PORTAL_MAX_UPLOAD_BYTES // (1024 * 1024)
    return HttpError(413, f"the upload is larger than the {limit} MB limit")


def _import_csv(request: HttpRequest, app: App, dataset_id: str) -> Status:
    """The browser's CSV upload: small files now, big ones as a background job."""
    if upload_too_large(request.META.get("CONTENT_LENGTH"), settings.PORTAL_MAX_UPLOAD_BYTES):
        raise _too_large()
    try:
        upload = request.FILES.get("file")
    except RequestDataTooBig:
        raise _too_large() from None
    if upload is None:
        raise HttpError(400, "file: send the CSV file as the multipart field 'file'")
    if upload.size > settings.PORTAL_MAX_UPLOAD_BYTES:
        raise _too_large()
    job = importing.import_file(app, request.user, upload.name, upload.read(), [dataset_id])
    if job.status == ImportJob.Status.FAILED:
        raise HttpError(400, "nothing was imported: " + "; ".join(job.errors))
    if job.status == ImportJob.Status.DONE:
        return Status(201, {"created": job.created_count, "skipped": job.skipped_count})
    return Status(202, _job_json(app, job))


@router.post(
    "/apps/{app_id}/datasets/{dataset_id}/inputs",
    response={201: ImportOut, 202: JobOut},
    openapi_extra=UPLOAD_BODY,
)
def upload_inputs(request: HttpRequest, app_id: str, dataset_id: str) -> Status:
    """Add inputs to the dataset (and so to the app), all or nothing: a bad input or row
    saves none. Send JSON `{"inputs": [{"text", "concepts", "negative_concepts", "id",
    "metadata"}]}`, or a CSV file as the multipart field `file` (the SDK's format, the
    portal's, or `text,label`). Concepts that don't exist yet are created; inputs already
    in the dataset (same text) or in the app (same input ID) are skipped. A CSV file of
    PORTAL_BACKGROUND_IMPORT_ROWS rows or more is imported in the background: the answer
    is then 202 with the import job, to poll at its `url`. New inputs are embedded by a
    worker: with the job queue down, the answer is 503 and nothing is saved."""
    app = get_app(request, app_id)
    dataset = get_dataset(app, dataset_id)
    ensure_available()
    if request.content_type == "multipart/form-data":
        return _import_csv(request, app, dataset.slug)
    body = _json_inputs(request)
    rows = [
        ParsedRow(
            row=number,
            text=item.text,
            external_id=item.id,
            concepts=tuple(item.concepts),
            negative_concepts=tuple(item.negative_concepts),
            metadata=item.metadata,
        )
        for number, item in enumerate(body.inputs, start=1)
    ]
    result = importing.add_inputs(app, rows, datasets=[dataset], concepts=[], author=request.user)
    return Status(201, {"created": result.created, "skipped": result.skipped})


@router.get("/apps/{app_id}/inputs/jobs/{job_id}", response=JobOut, url_name="api-import-job")
def import_job(request: HttpRequest, app_id: str, job_id: Number) -> dict:
    """An import job: PENDING -> RUNNING -> DONE (with counts) or FAILED (with the errors;
    nothing was imported)."""
    app = get_app(request, app_id)
    return _job_json(app, get_import_job(app, job_id))


class InputOut(Schema):
    id: int
    external_id: str
    text: str
    concepts: list[str]
    negative_concepts: list[str]
    datasets: list[str]
    metadata: dict[str, Any]
    revision: int
    created_at: datetime


class InputPage(Schema):
    count: int
    page: int
    pages: int
    next_page: int | None
    inputs: list[InputOut]


def _rows(inputs: QuerySet[Input]) -> QuerySet[Input]:
    # The explorer's rows leave metadata out; the API shows it.
    return with_row_data(inputs).defer(None)


def _input_json(item: Input) -> dict:
    """`item` fetched through _rows."""
    annotations = item.annotations.all()
    return {
        "id": item.pk,
        "external_id": item.external_id,
        "text": item.text,
        "concepts": [a.concept.slug for a in annotations if a.value == Annotation.POSITIVE],
        "negative_concepts": [
            a.concept.slug for a in annotations if a.value == Annotation.NEGATIVE
        ],
        "datasets": [d.slug for d in item.datasets.all()],
        "metadata": item.metadata,
        "revision": item.revision,
        "created_at": item.created,
    }


def _named(get, app: App, object_id: str, noun: str) -> Any:
    """The app's dataset or concept named by a filter, or a 404 that says which."""
    try:
        return get(app, object_id)
    except Http404:
        raise Http404(f"app {app.slug!r} has no {noun} {object_id!r}") from None


@router.get("/apps/{app_id}/inputs", response=InputPage)
def list_inputs(
    request: HttpRequest,
    app_id: str,
    dataset_id: str = "",
    concept: str = "",
    state: Literal["", "positive", "negative", "unlabeled"] = "",
    q: str = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> dict:
    """The app's inputs, newest first, PAGE_SIZE (50) a page, filtered as in the explorer:
    in a dataset, labeled with a concept (positive, negative, or either: `state`), whose
    text contains `q`. `state` alone applies to any concept: "unlabeled" means no labels."""
    app = get_app(request, app_id)
    filters = Filters(
        q=q.strip()[:200],
        dataset=_named(get_dataset, app, dataset_id, "dataset") if dataset_id else None,
        concept=_named(get_concept, app, concept, "concept") if concept else None,
        state=state,
    )
    paginator = Paginator(_rows(matching_inputs(app, filters)), PAGE_SIZE)
    try:
        items = paginator.page(page).object_list
    except EmptyPage:
        items = []
    return {
        "count": paginator.count,
        "page": page,
        "pages": paginator.num_pages,
        "next_page": page + 1 if page < paginator.num_pages else None,
        "inputs": [_input_json(item) for item in items],
    }


class LabelsIn(Forbid):
    concepts: ConceptIds | None = None
    negative_concepts: ConceptIds | None = None
    revision: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _check_labels(self) -> "LabelsIn":
        _check_sides(self.concepts, self.negative_concepts)
        return self


def _label_changes(item: Input, body: LabelsIn) -> dict[str, int | None]:
    """{concept ID: its new value, or None to remove the label}, for the labels that change."""
    current = dict(item.annotations.values_list("concept__slug", "value"))
    wanted = dict(current)
    for value, slugs in (
        (Annotation.POSITIVE, body.concepts),
        (Annotation.NEGATIVE, body.negative_concepts),
    ):
        if slugs is not None:
            wanted = {slug: v for slug, v in wanted.items() if v != value}
            wanted.update(dict.fromkeys(slugs, value))
    return {
        slug: wanted.get(slug)
        for slug in current.keys() | wanted.keys()
        if current.get(slug) != wanted.get(slug)
    }


@router.patch("/apps/{app_id}/inputs/{input_id}", response=InputOut)
def update_labels(request: HttpRequest, app_id: str, input_id: Number, body: LabelsIn) -> dict:
    """Replace the input's positive concepts, its negative ones, or both (a field left out
    stays as it is). Send the `revision` you read to refuse the change, with 409, if
    someone changed the labels since; without it, the last change wins."""
    app = get_app(request, app_id)
    item = get_input(app, input_id)
    with transaction.atomic():
        if body.revision is None:
            # Locked while its labels are read, so a change made meanwhile can't cause a 409.
            item = Input.objects.select_for_update().get(pk=item.pk)
        changes = _label_changes(item, body)
        concepts = {c.slug: c for c in Concept.objects.filter(app=app, slug__in=changes)}
        unknown = sorted(changes.keys() - concepts.keys())
        if unknown:
            names = ", ".join(unknown[:10])
            if len(unknown) > 10:
                names += f" and {len(unknown) - 10:,} more"
            message = f"unknown concepts: {names}; create them first (POST .../concepts)"
            raise HttpError(400, message)
        revision = item.revision if body.revision is None else body.revision
        for slug, value in sorted(changes.items()):
            if not labels.set_label(
                item, concepts[slug], value, revision, request.user, by_hand=False
            ):
                raise HttpError(409, CONFLICT)
            revision += 1
    return _input_json(_rows(Input.objects.filter(pk=item.pk)).get())


@router.delete("/apps/{app_id}/inputs/{input_id}", response={204: None})
def delete_input(request: HttpRequest, app_id: str, input_id: Number) -> Status:
    """The input with its labels; dataset versions keep their copy of it."""
    item = get_input(get_app(request, app_id), input_id)
    labels.delete_inputs(Input.objects.filter(pk=item.pk))
    return Status(204, None)
