from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from portal import deleting
from portal.access import get_app
from portal.forms import AppForm, AppSettingsForm
from portal.models import App


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
    }
    return render(request, "portal/app_overview.html", context)


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
