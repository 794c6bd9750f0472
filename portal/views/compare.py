"""Compare evaluations: per-concept tables side by side, curves overlaid, flipped inputs."""

import csv
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from portal import comparing
from portal.access import get_app
from portal.ids import as_number
from portal.models import App, Evaluation


def _chosen_ids(request: HttpRequest) -> tuple[list[int], int]:
    """The distinct evaluation ids asked for, in order, and how many values weren't ids."""
    ids: list[int] = []
    bad = 0
    for value in request.GET.getlist("ids"):
        pk = as_number(value)
        if pk is None:
            bad += 1
        elif pk not in ids:
            ids.append(pk)
    return ids, bad


def _finished_evaluations(app: App, ids: list[int]) -> list[Evaluation]:
    """The app's finished evaluations among `ids`: any other id, of another app or user
    or of an evaluation without results, is left out."""
    return list(
        Evaluation.objects.filter(
            model_version__model__app=app, pk__in=ids, status=Evaluation.Status.EVALUATED
        )
        .select_related("model_version__model", "dataset_version__dataset")
        .defer("data", "model_version__head", "model_version__log")
    )


@require_GET
def compare(request: HttpRequest, app_id: str) -> HttpResponse:
    """Evaluations `ids` side by side; `format=csv` downloads the totals and per-concept
    table."""
    app = get_app(request, app_id)
    ids, bad = _chosen_ids(request)
    evaluations = _finished_evaluations(app, ids)
    notes: list[str] = []
    missing = len(ids) - len(evaluations) + bad
    if missing:
        notes.append(
            f"{missing} of the chosen evaluations {'is' if missing == 1 else 'are'} not a "
            "finished evaluation of this app and left out."
        )
    if len(evaluations) > comparing.MAX_COMPARED:
        notes.append(
            f"At most {comparing.MAX_COMPARED} evaluations can be compared at once; these are "
            f"the first {comparing.MAX_COMPARED} of the ones you chose."
        )
        evaluations = sorted(evaluations, key=lambda e: ids.index(e.pk))[: comparing.MAX_COMPARED]
    context = {"app": app, "section": "evaluations", "notes": notes, "comparison": None}
    if len(evaluations) < 2:
        context["problem"] = (
            "Choose at least two finished evaluations to compare: tick them on the "
            "Evaluations page, then click Compare."
        )
        return render(request, "portal/compare.html", context)
    comparison = comparing.compare(evaluations)
    if request.GET.get("format") == "csv":
        return _csv_response(app, comparison)
    query = [("ids", item.evaluation.pk) for item in comparison.compared]
    url = reverse("portal:evaluations-compare", args=[app.slug])
    context.update(comparison=comparison, csv_url=f"{url}?{urlencode([*query, ('format', 'csv')])}")
    return render(request, "portal/compare.html", context)


def _csv_response(app: App, comparison: comparing.Comparison) -> HttpResponse:
    ids = "-".join(str(item.evaluation.pk) for item in comparison.compared)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{app.slug}-compare-{ids}.csv"'
    csv.writer(response).writerows(comparing.csv_rows(comparison))
    return response
