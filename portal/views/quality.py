"""Label quality: find the inputs similar to one, and the labels that look wrong."""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from portal import labels, similar, suspicious
from portal.access import get_app, get_concept, get_dataset, get_input
from portal.explorer import with_row_data
from portal.ids import as_number
from portal.models import Annotation, App, Concept, Dataset, Input
from portal.views.explorer import CONFLICT

LABEL_ACTIONS = {"label": Annotation.POSITIVE, "label-negative": Annotation.NEGATIVE}


def _count(request: HttpRequest) -> int:
    k = as_number(request.GET.get("k", request.POST.get("k", "")))
    return k if k in similar.RESULT_CHOICES else similar.DEFAULT_RESULTS


def _similar_context(app: App, source: Input, k: int) -> dict:
    index = similar.index_for(app)
    found = similar.nearest(index, source.pk, k)
    ids = [r.input_pk for r in found or []]
    rows = {i.pk: i for i in with_row_data(Input.objects.filter(app=app, pk__in=ids))}
    return {
        "app": app,
        "section": "inputs",
        "source": with_row_data(Input.objects.filter(pk=source.pk)).get(),
        "results": [(rows[r.input_pk], r.score) for r in found or [] if r.input_pk in rows],
        "source_pending": found is None,
        "pending": len(index.pending),
        "k": k,
        "choices": similar.RESULT_CHOICES,
        "concepts": list(Concept.objects.filter(app=app).only("id", "slug")),
    }


@require_GET
def input_similar(request: HttpRequest, app_id: str, input_pk: int) -> HttpResponse:
    app = get_app(request, app_id)
    source = get_input(app, input_pk)
    return render(request, "portal/similar.html", _similar_context(app, source, _count(request)))


@require_POST
def input_similar_label(request: HttpRequest, app_id: str, input_pk: int) -> HttpResponse:
    app = get_app(request, app_id)
    source = get_input(app, input_pk)
    k = _count(request)
    action = request.POST.get("action", "")
    if action not in LABEL_ACTIONS:
        return HttpResponseBadRequest("Send action=label or action=label-negative.")
    if request.POST.get("all") == "1":
        found = similar.nearest(similar.index_for(app), source.pk, k) or []
        ids = [r.input_pk for r in found]
    else:
        ids = [pk for pk in map(as_number, request.POST.getlist("ids")) if pk is not None]
    concept_id = request.POST.get("bulk_concept", "")
    if not concept_id:
        message = "Choose a concept first."
    elif not ids:
        message = "Select some results first."
    else:
        concept = get_concept(app, concept_id)
        # Restricted to this app: IDs of anybody else's inputs select nothing.
        selection = Input.objects.filter(app=app, pk__in=ids[: max(similar.RESULT_CHOICES)])
        n = labels.label_inputs(selection, concept, LABEL_ACTIONS[action], request.user)
        kind = "" if action == "label" else " as negative"
        message = f"Labeled {n} input{pluralize(n)} {concept.slug}{kind}."
    url = reverse("portal:input-similar", args=[app.slug, source.pk]) + f"?k={k}"
    if not request.htmx:
        messages.info(request, message)
        return redirect(url)
    context = _similar_context(app, source, k) | {"result": message}
    return render(request, "portal/similar.html#similar-results", context)


def _dataset(request: HttpRequest, app: App) -> Dataset | None:
    dataset_id = request.GET.get("dataset", "")
    return get_dataset(app, dataset_id) if dataset_id else None


def _with_inputs(app: App, report: suspicious.Report) -> suspicious.Report:
    """The report's rows with their inputs and current labels, fetched in a few queries."""
    pks = {m.input_pk for m in report.mislabeled}
    pks |= {pk for c in report.conflicts for pk in (c.a_pk, c.b_pk)}
    found = {i.pk: i for i in with_row_data(Input.objects.filter(app=app, pk__in=pks))}
    for row in report.mislabeled:
        row.item = found.get(row.input_pk)
    for pair in report.conflicts:
        pair.a, pair.b = found.get(pair.a_pk), found.get(pair.b_pk)
        if pair.a and pair.b:
            pair.a_to_b = suspicious.changes_between(pair.a, pair.b)
            pair.b_to_a = suspicious.changes_between(pair.b, pair.a)
    return report


@require_GET
def suspicious_labels(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    dataset = _dataset(request, app)
    report = _with_inputs(app, suspicious.check(app, dataset))
    context = {
        "app": app,
        "section": "suspicious",
        "dataset": dataset,
        "datasets": list(Dataset.objects.filter(app=app).only("id", "slug")),
        "report": report,
        "max_labeled": suspicious.MAX_LABELED,
        "low_pct": round(100 * (1 - suspicious.CONFIDENCE)),
        "high_pct": round(100 * suspicious.CONFIDENCE),
        "similarity": suspicious.DUPLICATE_SIMILARITY,
    }
    return render(request, "portal/suspicious.html", context)


@require_POST
def suspicious_fix(request: HttpRequest, app_id: str, input_pk: int) -> HttpResponse:
    """Apply one row's fix to one input; the row comes back showing the current labels."""
    app = get_app(request, app_id)
    item = get_input(app, input_pk)
    revision = as_number(request.POST.get("revision", ""))
    pair = request.POST.get("pair", "")
    if revision is None or (pair and as_number(pair) is None):
        return HttpResponseBadRequest("Send the input's revision (and the pair's input ID).")
    other = get_input(app, as_number(pair)) if pair else None
    try:
        changes = suspicious.parse_changes(app, request.POST.getlist("change"))
    except suspicious.FixError as exc:
        return HttpResponseBadRequest(str(exc))
    saved = suspicious.apply_changes(item, changes, revision, request.user)
    if not request.htmx:
        if saved:
            messages.success(request, "Saved.")
        else:
            messages.warning(request, CONFLICT)
        dataset = request.POST.get("dataset", "")
        query = f"?{urlencode({'dataset': dataset})}" if dataset else ""
        return redirect(reverse("portal:suspicious", args=[app.slug]) + query)
    pks = [item.pk] + ([other.pk] if other else [])
    current = {i.pk: i for i in with_row_data(Input.objects.filter(app=app, pk__in=pks))}
    rows = {pk: suspicious.Mislabeled.fixed(current[pk]) for pk in pks}
    context = {"app": app, "saved": saved, "conflict": "" if saved else CONFLICT}
    if other is None:
        return render(request, "portal/_suspicious_row.html", context | {"row": rows[item.pk]})
    a, b = sorted(pks)
    context["pair"] = suspicious.Conflict(a, b, 0.0, [], current[a], current[b])
    # The pair's inputs may also be listed above, with fixes that no longer apply.
    context["also"] = list(rows.values())
    return render(request, "portal/_suspicious_pair.html", context)


urlpatterns = [
    path("similar/<int:input_pk>/", input_similar, name="input-similar"),
    path("similar/<int:input_pk>/label/", input_similar_label, name="input-similar-label"),
    path("suspicious/", suspicious_labels, name="suspicious"),
    path("suspicious/<int:input_pk>/fix/", suspicious_fix, name="suspicious-fix"),
]
