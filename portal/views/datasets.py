from django.contrib import messages
from django.db.models import Count, Exists, F, Func, OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh

from portal import deleting, versions
from portal.access import get_app, get_dataset, get_version
from portal.csv_io import export_csv, export_jsonl
from portal.forms import DatasetForm
from portal.models import Annotation, App, Concept, Dataset, DatasetVersion, Input
from portal.queue import QueueUnavailable

EXPORTS = {
    "csv": (export_csv, "text/csv; charset=utf-8"),
    "jsonl": (export_jsonl, "application/jsonl; charset=utf-8"),
}


def _count(queryset: QuerySet) -> Subquery:
    """COUNT(*) of a correlated queryset: counts side by side without multiplying joins."""
    counted = queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Subquery(counted)


def with_counts(datasets: QuerySet[Dataset]) -> QuerySet[Dataset]:
    members = Dataset.inputs.through.objects.filter(dataset=OuterRef("pk"))
    labeled = members.filter(Exists(Annotation.objects.filter(input=OuterRef("input"))))
    return datasets.annotate(
        input_count=_count(members),
        labeled_count=_count(labeled),
        version_count=_count(DatasetVersion.objects.filter(dataset=OuterRef("pk"))),
    )


def _concepts_in(dataset: Dataset) -> QuerySet[Concept]:
    """The concepts labeled in the dataset, with its positive and negative counts."""
    in_dataset = Q(annotations__input__datasets=dataset)
    positive = Q(annotations__value=Annotation.POSITIVE)
    negative = Q(annotations__value=Annotation.NEGATIVE)
    return dataset.app.concepts.annotate(
        positives=Count("annotations", filter=in_dataset & positive),
        negatives=Count("annotations", filter=in_dataset & negative),
    ).filter(Q(positives__gt=0) | Q(negatives__gt=0))


def _list_versions(dataset: Dataset) -> list[DatasetVersion]:
    return [_with_count_list(version) for version in dataset.versions.all()]


def _with_count_list(version: DatasetVersion) -> DatasetVersion:
    # A list, not the dict: a concept called "items" would shadow dict.items in a template.
    version.count_list = [
        (slug, counts.get("positive", 0), counts.get("negative", 0))
        for slug, counts in sorted(version.concept_counts.items())
    ]
    return version


def datasets(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    context = {
        "app": app,
        "section": "datasets",
        "datasets": with_counts(app.datasets.all()),
        "form": DatasetForm(app=app),
    }
    return render(request, "portal/datasets.html", context)


def dataset_create(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    form = DatasetForm(request.POST or None, app=app)
    if request.method == "POST" and form.is_valid():
        dataset = form.save()
        if request.htmx:
            return HttpResponseClientRedirect(dataset.get_absolute_url())
        return redirect(dataset)
    if request.htmx:
        context = {"app": app, "form": form}
        return render(request, "portal/datasets.html#create-dataset-form", context)
    # Without JavaScript the dialog's link lands here: the list with the form open above it.
    context = {
        "app": app,
        "section": "datasets",
        "datasets": with_counts(app.datasets.all()),
        "form": form,
        "create_page": True,
    }
    return render(request, "portal/datasets.html", context)


def _detail(request: HttpRequest, app: App, dataset: Dataset) -> HttpResponse:
    members = Input.objects.filter(datasets=dataset)
    context = {
        "app": app,
        "section": "datasets",
        "dataset": dataset,
        "input_count": members.count(),
        "labeled_count": members.labeled().count(),
        "concepts": _concepts_in(dataset),
        "versions": _list_versions(dataset),
        "deletes": deleting.describe(deleting.dataset_contents(dataset)),
    }
    return render(request, "portal/dataset_detail.html", context)


@require_GET
def dataset_detail(request: HttpRequest, app_id: str, dataset_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    return _detail(request, app, get_dataset(app, dataset_id))


@require_POST
def dataset_delete(request: HttpRequest, app_id: str, dataset_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    dataset = get_dataset(app, dataset_id)
    deleted = deleting.describe(deleting.dataset_contents(dataset))
    dataset.delete()  # the inputs stay in the app; only the membership and versions go
    messages.success(
        request, f"Dataset “{dataset.slug}” was deleted with {deleted}; its inputs stay in the app."
    )
    return redirect("portal:datasets", app.slug)


@require_POST
def version_new(request: HttpRequest, app_id: str, dataset_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    dataset = get_dataset(app, dataset_id)
    if not dataset.inputs.exists():
        note = (
            f"Dataset {dataset.slug} has no inputs yet: upload or add some, then make a "
            "version. Nothing was made."
        )
        created = None
    else:
        try:
            created = versions.create_version(dataset)
        except QueueUnavailable as exc:
            messages.error(request, str(exc))
            # A reload shows the message where every page shows messages.
            return HttpResponseClientRefresh() if request.htmx else redirect(dataset)
        note = f"Version v{created.number} is being made; it is ready when its status says so."
    if request.htmx:
        context = {
            "app": app,
            "dataset": dataset,
            "versions": _list_versions(dataset),
            "version_note": note,
            "version_refused": created is None,
            "counted": True,
        }
        return render(request, "portal/dataset_detail.html#versions", context)
    (messages.success if created else messages.error)(request, note)
    return redirect(dataset)


@require_GET
def version_status(request: HttpRequest, app_id: str, dataset_id: str, number: int) -> HttpResponse:
    """The version's row, polled while its snapshot runs."""
    app = get_app(request, app_id)
    dataset = get_dataset(app, dataset_id)
    version = get_version(dataset, number)
    if not request.htmx:
        return _detail(request, app, dataset)
    context = {"app": app, "dataset": dataset, "version": _with_count_list(version)}
    return render(request, "portal/_version_row.html", context)


@require_GET
def version_export(
    request: HttpRequest, app_id: str, dataset_id: str, number: int, fmt: str
) -> StreamingHttpResponse:
    app = get_app(request, app_id)
    version = get_version(get_dataset(app, dataset_id), number)
    if fmt not in EXPORTS or version.status != DatasetVersion.Status.READY:
        raise Http404("Only a READY version can be exported, as CSV or JSONL.")
    export, content_type = EXPORTS[fmt]
    lines = export(versions.export_rows(version))
    response = StreamingHttpResponse(lines, content_type=content_type)
    filename = versions.export_filename(version, fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns = [
    path("", datasets, name="datasets"),
    path("new/", dataset_create, name="dataset-create"),
    path("<str:dataset_id>/", dataset_detail, name="dataset-detail"),
    path("<str:dataset_id>/delete/", dataset_delete, name="dataset-delete"),
    path("<str:dataset_id>/versions/new/", version_new, name="dataset-version-new"),
    path(
        "<str:dataset_id>/versions/<int:number>/status/",
        version_status,
        name="dataset-version-status",
    ),
    path(
        "<str:dataset_id>/versions/<int:number>/export.<str:fmt>",
        version_export,
        name="dataset-version-export",
    ),
]
