from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from portal import embedding, importing
from portal.access import get_app, get_import_job
from portal.csv_io import upload_too_large
from portal.forms import ConceptForm, UploadForm
from portal.models import App, ImportJob
from portal.queue import QueueUnavailable, ensure_available

TEMPLATE = "portal/upload.html"


def _render_form(
    request: HttpRequest, app: App, form: UploadForm, upload_error: str = ""
) -> HttpResponse:
    template = f"{TEMPLATE}#upload-form" if request.htmx else TEMPLATE
    context = {
        "app": app,
        "form": form,
        "section": "inputs",
        "upload_error": upload_error,
        "max_text_length": f"{settings.PORTAL_MAX_TEXT_LENGTH:,}",
    }
    return render(request, template, context)


@csrf_exempt
def upload(request: HttpRequest, app_id: str) -> HttpResponse:
    """A body over the limits is refused before it is read: the CSRF check, which reads
    it, runs after the size check."""
    app = get_app(request, app_id)
    limit = settings.PORTAL_MAX_UPLOAD_BYTES
    if request.method == "POST" and upload_too_large(request.META.get("CONTENT_LENGTH"), limit):
        message = f"Nothing was uploaded: the file is larger than the {limit // 2**20} MB limit."
        return _render_form(request, app, UploadForm(app=app), message)
    try:
        return _upload(request, app)
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 2**20
        message = (
            f"Nothing was uploaded: the typed text is larger than {limit} MB. "
            "Upload it as a .csv file instead."
        )
        return _render_form(request, app, UploadForm(app=app), message)


@csrf_protect
def _upload(request: HttpRequest, app: App) -> HttpResponse:
    if request.method != "POST":
        # The dataset the person came from, or the app's only one, is chosen already.
        datasets = list(app.datasets.values_list("slug", flat=True))
        wanted = request.GET.get("dataset", "")
        chosen = [wanted] if wanted in datasets else datasets if len(datasets) == 1 else []
        return _render_form(request, app, UploadForm(app=app, initial={"datasets": chosen}))
    form = UploadForm(request.POST, request.FILES or None, app=app)
    if not form.is_valid():
        return _render_form(request, app, form)
    data = form.cleaned_data
    try:
        # New inputs are embedded by a worker: with the queue down, nothing is saved.
        ensure_available()
    except QueueUnavailable as exc:
        form.add_error(None, str(exc))
        return _render_form(request, app, form)
    if data["mode"] == "text":
        rows = importing.rows_from_text(data["text"])
        result = importing.add_inputs(
            app,
            rows,
            datasets=list(data["datasets"]),
            concepts=list(data["concepts"]),
            author=request.user,
        )
        return _done(request, app, result.created, result.skipped)
    try:
        job = importing.import_file(
            app,
            request.user,
            data["file"].name,
            data["file"].read(),
            dataset_ids=[d.slug for d in data["datasets"]],
            concept_ids=[c.slug for c in data["concepts"]],
            label_map=data["label_map"],
        )
    except QueueUnavailable as exc:
        form.add_error(None, str(exc))
        return _render_form(request, app, form)
    if job.status == ImportJob.Status.FAILED:
        form.add_error("file", "Nothing was imported: the file has errors.")
        form.import_errors = job.errors
        return _render_form(request, app, form)
    if job.status == ImportJob.Status.DONE:
        return _done(request, app, job.created_count, job.skipped_count)
    return _job_status(request, app, job)


def _done(request: HttpRequest, app: App, created: int, skipped: int) -> HttpResponse:
    message = f"Uploaded {created} input{'s' * (created != 1)}."
    if skipped:
        message += f" {skipped} duplicate{'s' * (skipped != 1)} skipped."
    messages.success(request, message)
    url = reverse("portal:inputs", args=[app.slug])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _job_status(request: HttpRequest, app: App, job: ImportJob) -> HttpResponse:
    template = "portal/_import_job.html"
    if not request.htmx:
        template = "portal/import_job.html"
    return render(request, template, {"app": app, "job": job, "section": "inputs"})


@require_GET
def import_status(request: HttpRequest, app_id: str, job_pk: int) -> HttpResponse:
    app = get_app(request, app_id)
    return _job_status(request, app, get_import_job(app, job_pk))


@require_POST
def add_concept(request: HttpRequest, app_id: str) -> HttpResponse:
    """The window's "Add new concept": create it and return it as a chosen option."""
    app = get_app(request, app_id)
    form = ConceptForm(request.POST, app=app)
    if not form.is_valid():
        error = next(iter(form.errors.values()))[0]
        return render(request, "portal/_concept_added.html", {"error": error})
    concept = form.save()
    return render(request, "portal/_concept_added.html", {"concept": concept})


@require_GET
def embedding_status(request: HttpRequest, app_id: str) -> HttpResponse:
    """How many of the app's inputs are embedded; polls while some are not."""
    app = get_app(request, app_id)
    done, total = embedding.embedded_count(app)
    context = {"app": app, "done": done, "total": total}
    return render(request, "portal/_embedding_status.html", context)


urlpatterns = [
    path("upload/", upload, name="inputs-upload"),
    path("upload/concepts/", add_concept, name="inputs-upload-concept"),
    path("imports/<int:job_pk>/", import_status, name="import-status"),
    path("embedding/", embedding_status, name="inputs-embedding"),
]
