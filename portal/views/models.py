"""Models: add a Transfer Learn model, set it up, train it and follow its versions."""

import json
from typing import NamedTuple

from django.contrib import messages
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from classifier import embedders
from portal import deleting, evaluating, training
from portal.access import get_app, get_model, get_model_version
from portal.forms import ModelCreateForm, ModelSetupForm
from portal.ids import as_number
from portal.models import App, Dataset, DatasetVersion, Evaluation, ModelVersion, TrainableModel
from portal.queue import QueueUnavailable
from portal.views import evaluations

READY, FAILURE = DatasetVersion.Status.READY, DatasetVersion.Status.FAILURE
DETAILS = "portal/_model_version_details.html"


def with_latest(queryset: QuerySet[TrainableModel]) -> list[TrainableModel]:
    """The models, each with its latest version's number and status (`latest_number`,
    `latest_status`, `latest_status_label`)."""
    latest = ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-number")
    annotated = queryset.annotate(
        latest_number=Subquery(latest.values("number")[:1]),
        latest_status=Subquery(latest.values("status")[:1]),
    )
    result = list(annotated)
    for model in result:
        status = model.latest_status
        model.latest_status_label = ModelVersion.words(status) if status else ""
    return result


def models(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    context = {"app": app, "section": "models", "models": with_latest(app.trainable_models)}
    return render(request, "portal/models.html", context)


@require_GET
def model_types(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    return render(request, "portal/model_types.html", {"app": app, "section": "models"})


def model_create(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    form = ModelCreateForm(request.POST or None, app=app)
    if request.method == "POST" and form.is_valid():
        model = form.save()
        return redirect("portal:model-setup", app.slug, model.slug)
    context = {"app": app, "section": "models", "form": form}
    return render(request, "portal/model_create.html", context)


class DatasetChoice(NamedTuple):
    """What the set-up form offers for the chosen dataset."""

    datasets: list[Dataset]
    dataset: Dataset | None
    versions: list[DatasetVersion]  # its READY versions, newest first
    version: DatasetVersion | None
    building: bool  # no version is READY yet, but one is being made

    @property
    def key(self) -> tuple[str, str]:
        """(dataset_id, dataset_version_id) as the parameters spell them."""
        if self.version is None:
            return (self.dataset.slug if self.dataset else "", "")
        return (self.dataset.slug, str(self.version.number))

    @property
    def concepts(self) -> list[str]:
        return sorted(self.version.concept_counts) if self.version else []


class ConceptRow(NamedTuple):
    slug: str
    positive: int
    negative: int
    checked: bool  # trained
    selected: bool  # in the inference settings' "select concepts"


def _choose(app: App, dataset_id: str, version_id: str) -> DatasetChoice:
    datasets = list(app.datasets.all())
    dataset = next((d for d in datasets if d.slug == dataset_id), None)
    if dataset is None:
        # Nothing (valid) chosen yet: the dataset with the newest READY version.
        newest = (
            DatasetVersion.objects.filter(dataset__app=app, status=READY)
            .select_related("dataset")
            .order_by("-created", "-pk")
            .first()
        )
        dataset = newest.dataset if newest else next(iter(datasets), None)
    if dataset is None:
        return DatasetChoice(datasets, None, [], None, False)
    ready = list(dataset.versions.filter(status=READY))
    version = next((v for v in ready if str(v.number) == version_id), next(iter(ready), None))
    building = not ready and dataset.versions.exclude(status__in=[READY, FAILURE]).exists()
    return DatasetChoice(datasets, dataset, ready, version, building)


def _concept_rows(choice: DatasetChoice, checked: list[str], selected: list[str]) -> list:
    counts = choice.version.concept_counts if choice.version else {}
    return [
        ConceptRow(
            slug,
            counts[slug].get("positive", 0),
            counts[slug].get("negative", 0),
            slug in checked,
            slug in selected,
        )
        for slug in sorted(counts)
    ]


def _train(model: TrainableModel, params: dict) -> ModelVersion:
    # One transaction: a ParamsError leaves the model's parameters as they were.
    with transaction.atomic():
        model.params = params
        model.save(update_fields=["params"])
        return training.start_training(model)


def model_setup(request: HttpRequest, app_id: str, model_id: str) -> HttpResponse:
    """The set-up form; GET ?dataset=... (over htmx) re-renders the dataset's parts."""
    app = get_app(request, app_id)
    model = get_model(app, model_id)
    base_models = embedders.available()
    if request.method == "POST":
        form = ModelSetupForm(request.POST, base_models=base_models)
        if form.is_valid():
            try:
                _train(model, form.params())
            except training.ParamsError as exc:
                form.add_error(None, str(exc))
            except QueueUnavailable as exc:
                messages.error(request, str(exc))  # the version shows as failed, with why
                return redirect(model)
            else:
                return redirect(model)
        choice = _choose(
            app, request.POST.get("dataset", ""), request.POST.get("dataset_version", "")
        )
        checked = request.POST.getlist("concepts")
        selected = request.POST.getlist("select_concepts")
    else:
        initial = ModelSetupForm.initial_from(model.params)
        saved = (initial["dataset"], initial["dataset_version"])
        if "dataset" in request.GET:  # another dataset or version was picked
            choice = _choose(app, request.GET["dataset"], request.GET.get("dataset_version", ""))
        else:
            # The model's dataset at its newest ready version: training again is for the
            # labels added since.
            choice = _choose(app, saved[0], "")
            if note := _newer_than_trained(model, choice, saved[1]):
                messages.info(request, note)
        if choice.key != saved:
            # Another dataset version than the model's: all its concepts, no subset.
            initial["concepts"], initial["select_concepts"] = choice.concepts, []
        elif not initial["concepts"]:
            initial["concepts"] = choice.concepts
        form = ModelSetupForm(initial=initial, base_models=base_models)
        checked, selected = initial["concepts"], initial["select_concepts"]
    context = {
        "app": app,
        "section": "models",
        "model": model,
        "form": form,
        "choice": choice,
        "concept_rows": _concept_rows(choice, checked, selected),
        "setup_url": reverse("portal:model-setup", args=[app.slug, model.slug]),
        "default_base_model": embedders.DEFAULT_MODEL,
    }
    if request.htmx and request.method == "GET" and "dataset" in request.GET:
        return render(request, "portal/_model_setup_parts.html", context)
    return render(request, "portal/model_setup.html", context)


def _newer_than_trained(model: TrainableModel, choice: DatasetChoice, trained_on: str) -> str:
    """What to say when the form offers a newer version than the model was trained on."""
    if choice.version is None or not trained_on or str(choice.version.number) == trained_on:
        return ""
    if not model.versions.exists():
        return ""
    return (
        f"The last training used {choice.dataset.slug} v{trained_on}; "
        f"the newest version, v{choice.version.number}, is chosen."
    )


def _evaluate_context(app: App, version: ModelVersion | None) -> dict:
    """What the version details' Evaluate form offers: the app's ready dataset versions,
    the one the version was trained on first chosen (else the newest of its dataset)."""
    choices = evaluations.dataset_versions(app)
    trained_on = version.dataset_version_id if version else None
    default = next((dv.pk for dv in choices if dv.pk == trained_on), None)
    if version is not None and version.status == ModelVersion.Status.TRAINED and choices:
        seen = evaluating.seen_counts(version, choices)
        for choice in choices:
            choice.seen = seen[choice.pk]
    return {"evaluation_choices": choices, "default_choice": default}


def _detail(
    request: HttpRequest, app: App, model: TrainableModel, selected: int | None = None
) -> HttpResponse:
    versions = list(model.versions.all())
    shown = next((v for v in versions if v.number == selected), next(iter(versions), None))
    context = {
        "app": app,
        "section": "models",
        "model": model,
        "versions": versions,
        "version": shown,
        "deletes": deleting.describe(deleting.model_contents(model)),
        "evaluations": evaluations.evaluations_of(
            Evaluation.objects.filter(model_version__model=model)
        ),
        **_evaluate_context(app, shown),
    }
    return render(request, "portal/model_detail.html", context)


@require_GET
def model_detail(request: HttpRequest, app_id: str, model_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    selected = request.GET.get("version", "")
    return _detail(request, app, get_model(app, model_id), as_number(selected))


@require_POST
def model_delete(request: HttpRequest, app_id: str, model_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    model = get_model(app, model_id)
    count = model.versions.count()
    model.delete()
    versions = f"{count} version{'' if count == 1 else 's'}"
    messages.success(request, f"Model “{model.slug}” and its {versions} were deleted.")
    return redirect("portal:models", app.slug)


def _version_fragment(
    request: HttpRequest, app_id: str, model_id: str, number: int, template: str
) -> tuple[HttpResponse, ModelVersion]:
    """A fragment of the model page about one version, and the version; without htmx,
    the whole page."""
    app = get_app(request, app_id)
    model = get_model(app, model_id)
    version = get_model_version(model, number)
    if not request.htmx:
        return _detail(request, app, model, number), version
    context = {"app": app, "model": model, "version": version}
    if template == DETAILS:
        context.update(_evaluate_context(app, version))
    return render(request, template, context), version


@require_GET
def version_status(request: HttpRequest, app_id: str, model_id: str, number: int) -> HttpResponse:
    """The version's row, polled while it waits or trains: the one poll of the model page.

    The row sends the state it shows (`seen`). When the state has changed, the response
    triggers `model-version-changed` (the details panel of an unfinished version reloads),
    and when the version has finished, also `model-version-finished` (the page head
    reloads, with Try your own text once a version is trained).
    """
    response, version = _version_fragment(
        request, app_id, model_id, number, "portal/_model_version_row.html"
    )
    seen = request.GET.get("seen")
    if request.htmx and seen is not None and seen != version.state:
        events = {"model-version-changed": version.number}
        if version.is_finished:
            events["model-version-finished"] = version.number
        response["HX-Trigger"] = json.dumps(events)
    return response


@require_GET
def version_details(request: HttpRequest, app_id: str, model_id: str, number: int) -> HttpResponse:
    """The version's parameters, error and log, below the versions table."""
    return _version_fragment(request, app_id, model_id, number, DETAILS)[0]


@require_GET
def version_log(request: HttpRequest, app_id: str, model_id: str, number: int) -> HttpResponse:
    app = get_app(request, app_id)
    model = get_model(app, model_id)
    version = get_model_version(model, number)
    response = HttpResponse(version.log, content_type="text/plain; charset=utf-8")
    filename = f"{app.slug}_{model.slug}_v{version.number}_training.log"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns = [
    path("", models, name="models"),
    path("types/", model_types, name="model-types"),
    path("new/", model_create, name="model-create"),
    path("<str:model_id>/", model_detail, name="model-detail"),
    path("<str:model_id>/setup/", model_setup, name="model-setup"),
    path("<str:model_id>/delete/", model_delete, name="model-delete"),
    path("<str:model_id>/versions/<int:number>/", version_details, name="model-version"),
    path(
        "<str:model_id>/versions/<int:number>/status/",
        version_status,
        name="model-version-status",
    ),
    path("<str:model_id>/versions/<int:number>/log.txt", version_log, name="model-version-log"),
]
