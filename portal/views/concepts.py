from django.contrib import messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET

from portal.access import get_app, get_concept
from portal.forms import ConceptForm, RenameForm
from portal.models import Annotation, App, Concept


def with_counts(concepts: QuerySet[Concept]) -> QuerySet[Concept]:
    return concepts.annotate(
        positives=Count("annotations", filter=Q(annotations__value=Annotation.POSITIVE)),
        negatives=Count("annotations", filter=Q(annotations__value=Annotation.NEGATIVE)),
    )


def _counted(concept: Concept) -> Concept:
    return with_counts(Concept.objects.filter(pk=concept.pk)).get()


def _list_context(app: App, **context) -> dict:
    return {
        "app": app,
        "section": "concepts",
        "concepts": with_counts(app.concepts.order_by("slug")),
        "form": ConceptForm(app=app),
        **context,
    }


def concepts(request: HttpRequest, app_id: str) -> HttpResponse:
    """The concept list; a POST creates a concept."""
    app = get_app(request, app_id)
    form = ConceptForm(request.POST or None, app=app)
    created = None
    if request.method == "POST" and form.is_valid():
        created = form.save()
        if not request.htmx:
            messages.success(request, f"Concept “{created.slug}” created.")
            return redirect("portal:concepts", app.slug)
        form = ConceptForm(app=app)  # empty again, ready for the next concept
    template = "portal/concepts.html#concept-section" if request.htmx else "portal/concepts.html"
    return render(request, template, _list_context(app, form=form, created=created))


@require_GET
def concept_row(request: HttpRequest, app_id: str, concept_id: str) -> HttpResponse:
    """One row of the list, as it shows when nobody edits it (Cancel in the rename row)."""
    app = get_app(request, app_id)
    concept = get_concept(app, concept_id)
    if not request.htmx:
        return redirect("portal:concepts", app.slug)
    return render(request, "portal/_concept_row.html", {"app": app, "concept": _counted(concept)})


def concept_rename(request: HttpRequest, app_id: str, concept_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    concept = get_concept(app, concept_id)
    form = RenameForm(request.POST or None, instance=concept)
    if request.method == "POST" and form.is_valid():
        form.save()
        if request.htmx:
            context = {"app": app, "concept": _counted(concept)}
            return render(request, "portal/_concept_row.html", context)
        messages.success(request, f"Concept “{concept.slug}” renamed.")
        return redirect("portal:concepts", app.slug)
    if request.htmx:
        concept = _counted(get_concept(app, concept_id))
        context = {"app": app, "concept": concept, "editing": concept, "rename_form": form}
        return render(request, "portal/_concept_row.html", context)
    context = _list_context(app, editing=concept, rename_form=form)
    return render(request, "portal/concepts.html", context)


def concept_delete(request: HttpRequest, app_id: str, concept_id: str) -> HttpResponse:
    """GET asks for confirmation, stating how many labels go; only a POST deletes."""
    app = get_app(request, app_id)
    concept = get_concept(app, concept_id)
    if request.method == "POST":
        concept.delete()  # its labels go with it (CASCADE); versions keep their copies
        messages.success(request, f"Concept “{concept.slug}” and its labels were deleted.")
        return redirect("portal:concepts", app.slug)
    context = _list_context(app, deleting=concept, label_count=concept.annotations.count())
    if request.htmx:
        return render(request, "portal/_concept_delete.html", context)
    return render(request, "portal/concepts.html", context)


urlpatterns = [
    path("", concepts, name="concepts"),
    path("<str:concept_id>/", concept_row, name="concept-row"),
    path("<str:concept_id>/rename/", concept_rename, name="concept-rename"),
    path("<str:concept_id>/delete/", concept_delete, name="concept-delete"),
]
