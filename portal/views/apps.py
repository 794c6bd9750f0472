from django.contrib import messages
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from portal import deleting
from portal.access import get_app
from portal.forms import AppForm, AppSettingsForm
from portal.models import App, Evaluation, TrainableModel
from portal.views.models import with_latest


def home(request: HttpRequest) -> HttpResponse:
    apps = App.objects.filter(owner=request.user)
    context = {"apps": apps, "create_form": AppForm(owner=request.user)}
    return render(request, "portal/home.html", context)


def app_create(request: HttpRequest) -> HttpResponse:
    form = AppForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        app = form.save()
        if request.htmx:
            return HttpResponseClientRedirect(app.get_absolute_url())
        return redirect(app)
    template = (
        "portal/app_create.html#create-app-form" if request.htmx else "portal/app_create.html"
    )
    return render(request, template, {"form": form})


def app_overview(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    context = {
        "app": app,
        "section": "overview",
        "counts": app.counts(),
        "activity": app.recent_activity(),
        "models": models_with_last_evaluation(app),
    }
    return render(request, "portal/app_overview.html", context)


def models_with_last_evaluation(app: App) -> list[TrainableModel]:
    """The app's models with their latest version's status (`with_latest`) and their last
    finished evaluation as `last_evaluation` (or None)."""
    finished = Evaluation.objects.filter(
        model_version__model=OuterRef("pk"), status=Evaluation.Status.EVALUATED
    ).order_by("-finished", "-pk")
    found = with_latest(
        app.trainable_models.annotate(last_evaluation_pk=Subquery(finished.values("pk")[:1]))
    )
    evaluations = (
        Evaluation.objects.select_related("model_version", "dataset_version__dataset")
        .defer("data", "model_version__head", "model_version__log")
        .in_bulk([m.last_evaluation_pk for m in found if m.last_evaluation_pk])
    )
    for model in found:
        model.last_evaluation = evaluations.get(model.last_evaluation_pk)
    return found


def app_settings(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    form = AppSettingsForm(request.POST or None, instance=app)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("portal:app-settings", app.slug)
    context = {
        "app": app,
        "form": form,
        "section": "settings",
        "deletes": deleting.describe(deleting.app_contents(app)),
    }
    return render(request, "portal/app_settings.html", context)


@require_POST
def app_delete(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    if request.POST.get("confirm") != app.slug:
        messages.error(request, "Type the app ID to confirm the deletion.")
        return redirect("portal:app-settings", app.slug)
    deleted = deleting.describe(deleting.app_contents(app))
    app.delete()
    messages.success(request, f"App “{app.slug}” was deleted with {deleted}.")
    return redirect("portal:home")
