"""The inputs explorer: filter, page through, select and label an app's inputs."""

from urllib.parse import urlsplit

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from portal import explorer, labels
from portal.access import get_app, get_concept, get_dataset, get_input
from portal.explorer import PAGE_SIZE, STATES, Filters, matching_inputs, with_row_data
from portal.forms import ConceptForm
from portal.ids import as_number
from portal.models import Annotation, App, Concept, Dataset, Input, ModelVersion

CONFLICT = (
    "Changed elsewhere since you opened it (in another tab or over the API): nothing was "
    "saved, and these are its current labels. Click again to apply your change."
)
# Explicit selections come from one page; larger ones go through the filter.
MAX_IDS = 500
LABEL_VALUES = {"1": Annotation.POSITIVE, "0": Annotation.NEGATIVE, "none": None}
# The bulk action that works on the whole filter rather than on the selection.
ACCEPT = "accept-suggestions"


def _explorer_context(app: App, filters: Filters, page_number) -> dict:
    # Counting ignores the prefetches; they run for the page's rows only.
    paginator = Paginator(with_row_data(matching_inputs(app, filters)), PAGE_SIZE)
    page = paginator.get_page(page_number)
    concepts = list(Concept.objects.filter(app=app).only("id", "slug", "name"))
    version = explorer.suggesting_version(app, filters)
    page.object_list = list(page.object_list)
    explorer.add_suggestions(version, page.object_list, {c.slug for c in concepts})
    base = reverse("portal:inputs", args=[app.slug])
    return {
        "app": app,
        "section": "inputs",
        "filters": filters,
        "page": page,
        "count": paginator.count,
        "concepts": concepts,
        "shortcuts": concepts[:9],
        "datasets": list(Dataset.objects.filter(app=app).only("id", "slug")),
        "states": STATES.items(),
        "suggesting": version,
        "page_suggests": any(row.suggestions for row in page.object_list),
        "suggestion_min": explorer.SUGGESTION_MIN,
        "inputs_url": base,
        "back_url": base + filters.querystring(page=page.number),
        "prev_page_url": (
            base + filters.querystring(page=page.previous_page_number())
            if page.has_previous()
            else ""
        ),
        "next_page_url": (
            base + filters.querystring(page=page.next_page_number()) if page.has_next() else ""
        ),
    }


def _wants_fragment(request: HttpRequest) -> bool:
    # A history restore after a cache miss asks for the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request


@require_GET
def inputs(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    filters = Filters.from_data(app, request.GET)
    context = _explorer_context(app, filters, request.GET.get("page"))
    template = "portal/inputs.html#explorer" if _wants_fragment(request) else "portal/inputs.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _back(request: HttpRequest, app: App) -> str:
    """Where a form without JavaScript returns to: the explorer page it was sent from."""
    url = request.POST.get("next", "")
    base = reverse("portal:inputs", args=[app.slug])
    safe = url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()})
    return url if safe and url.startswith(base) else base


@require_POST
def input_label(request: HttpRequest, app_id: str, input_pk: int) -> HttpResponse:
    app = get_app(request, app_id)
    item = get_input(app, input_pk)
    typed = request.POST.get("concept", "").strip()
    value = request.POST.get("value", "")
    revision = request.POST.get("revision", "")
    if value not in LABEL_VALUES or as_number(revision) is None:
        return HttpResponseBadRequest("Send value=1, 0 or none and the input's revision.")
    concept = Concept.objects.filter(app=app, slug__iexact=typed).first()
    if concept is None and value == "1":
        # A new name typed in the row's "+ concept" box: created as the upload window's
        # Add new concept creates one, with the same ID rules.
        form = ConceptForm({"slug": typed}, app=app)
        if not form.is_valid():
            problem = " ".join(form.errors.get("slug", ["That concept ID is not valid."]))
            return _label_answer(request, app, item, False, typed, problem)
        concept = form.save()
    elif concept is None:
        raise Http404("No such concept in this app.")
    saved = labels.set_label(item, concept, LABEL_VALUES[value], int(revision), request.user)
    # A refused "+ concept" stays typed in, so that one click applies it.
    retry = concept.slug if not saved and value == "1" else ""
    return _label_answer(request, app, item, saved, retry, "" if saved else CONFLICT)


def _label_answer(
    request: HttpRequest, app: App, item: Input, saved: bool, retry: str, problem: str
) -> HttpResponse:
    """The input's row again after a label click (htmx), or the explorer page it came from."""
    if not request.htmx:
        if saved:
            messages.success(request, "Saved.")
        else:
            messages.warning(request, problem)
        return redirect(f"{_back(request, app)}#input-{item.pk}")
    current = with_row_data(Input.objects.filter(pk=item.pk)).get()
    labeled = {label.concept.slug for label in current.annotations.all()}
    back = _back(request, app)
    context = {
        "app": app,
        "input": current,
        "suggesting": None if labeled else _suggest_for_row(app, current, back),
        "saved": saved,
        "conflict": problem,
        "retry": "" if retry in labeled else retry,
        "back_url": back,
    }
    return render(request, "portal/_input_row.html", context)


def _suggest_for_row(app: App, row: Input, back: str) -> ModelVersion | None:
    """Give a re-rendered unlabeled row the suggestions the explorer page `back` shows on it,
    so that it keeps its chips when a click on one was refused; the version they are from."""
    try:
        filters = Filters.from_data(app, QueryDict(urlsplit(back).query))
    except Http404:
        filters = Filters()
    version = explorer.suggesting_version(app, filters)
    slugs = set(Concept.objects.filter(app=app).values_list("slug", flat=True))
    explorer.add_suggestions(version, [row], slugs)
    return version


def _run_bulk(request: HttpRequest, app: App, selection: QuerySet[Input]) -> str:
    """Apply the posted action to the selection; returns the message for the user."""
    action = request.POST.get("action", "")
    author = request.user
    if action in ("label", "label-negative", "unlabel"):
        concept_id = request.POST.get("bulk_concept", "")
        if not concept_id:
            return "Choose a concept first."
        concept = get_concept(app, concept_id)
        if action == "unlabel":
            n = labels.unlabel_inputs(selection, concept)
            return f"Removed {concept.slug} from {n} input{pluralize(n)}"
        if action == "label":
            n = labels.label_inputs(selection, concept, Annotation.POSITIVE, author)
            return f"Added {concept.slug} to {n} input{pluralize(n)}"
        n = labels.label_inputs(selection, concept, Annotation.NEGATIVE, author)
        return f"Added {concept.slug} as negative to {n} input{pluralize(n)}"
    if action in ("add-to-dataset", "remove-from-dataset"):
        dataset_id = request.POST.get("bulk_dataset", "")
        if not dataset_id:
            return "Choose a dataset first."
        dataset = get_dataset(app, dataset_id)
        if action == "add-to-dataset":
            n = labels.add_to_dataset(selection, dataset)
            return f"Added {n} input{pluralize(n)} to {dataset.slug}"
        n = labels.remove_from_dataset(selection, dataset)
        return f"Removed {n} input{pluralize(n)} from {dataset.slug}"
    n = labels.delete_inputs(selection)
    return f"Deleted {n} input{pluralize(n)}"


def _accept_suggestions(request: HttpRequest, app: App, filters: Filters) -> str:
    """Accept the suggestions of `suggest_threshold` or more on every input matching the
    filter, whatever is selected; returns the message for the user."""
    version = explorer.suggesting_version(app, filters)
    if version is None:
        return "No trained model to take suggestions from: train a model first."
    try:
        threshold = float(request.POST.get("suggest_threshold", ""))
    except ValueError:
        threshold = -1.0
    if not 0.0 <= threshold <= 1.0:
        return "Nothing was labeled: the threshold must be a number from 0 to 1."
    done = explorer.accept_suggestions(
        version, matching_inputs(app, filters), threshold, request.user
    )
    source = f"{version.model.slug} v{version.number}"
    message = (
        f"Accepted {done.labels} suggestion{pluralize(done.labels)} of {threshold:g} or more "
        f"from {source}: {done.inputs} input{pluralize(done.inputs)} labeled."
    )
    if done.not_embedded:
        message += (
            f" {done.not_embedded} unlabeled input{pluralize(done.not_embedded)} not embedded "
            "yet got no suggestion; try again when embedding is done."
        )
    return message


BULK_ACTIONS = {
    "label",
    "label-negative",
    "unlabel",
    "add-to-dataset",
    "remove-from-dataset",
    "delete",
    ACCEPT,
}


@require_POST
def inputs_bulk(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    filters = Filters.from_data(app, request.POST)
    if request.POST.get("action") not in BULK_ACTIONS:
        return HttpResponseBadRequest("Unknown action.")
    ids = [pk for pk in map(as_number, request.POST.getlist("ids")) if pk is not None]
    if request.POST.get("action") == ACCEPT:
        message = _accept_suggestions(request, app, filters)
    elif request.POST.get("all") == "1":
        message = _run_bulk(request, app, matching_inputs(app, filters))
    elif len(ids) > MAX_IDS:
        return HttpResponseBadRequest("Too many IDs; select all matching the filter instead.")
    elif ids:
        # Restricted to this app: IDs of anybody else's inputs select nothing.
        message = _run_bulk(request, app, Input.objects.filter(app=app, pk__in=ids))
    else:
        message = "Select some inputs first."
    if not request.htmx:
        messages.info(request, message)
        return redirect(_back(request, app))
    context = _explorer_context(app, filters, request.POST.get("page"))
    context["result"] = message
    return render(request, "portal/inputs.html#explorer", context)


urlpatterns = [
    path("", inputs, name="inputs"),
    path("bulk/", inputs_bulk, name="inputs-bulk"),
    path("<int:input_pk>/label/", input_label, name="input-label"),
]
