"""Predictions in the browser (Try your own text, batch CSV files) and over the API."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from portal import batch, explorer, feedback, prediction
from portal.access import get_app_model, get_dataset, get_prediction_job
from portal.models import Annotation, Dataset, ModelVersion, PredictionJob, TrainableModel
from portal.queue import QueueUnavailable, enqueue_on_commit
from portal.tasks import predict_csv


def _trial_context(model: TrainableModel) -> dict:
    trained = model.versions.filter(status=ModelVersion.Status.TRAINED).order_by("-number")
    latest = trained.first()
    return {
        "app": model.app,
        "model": model,
        "section": "models",
        "trained_versions": trained,
        "inference": latest.params.get("inference_params", {}) if latest else {},
    }


def _feedback_form(
    model: TrainableModel,
    version: ModelVersion | None,
    text: str,
    predicted: list[str],
    ticked: list[str],
) -> dict:
    """What the "Add to dataset" form needs: the text, the version's concepts with the
    ticked ones checked (at first the predicted ones), the app's datasets with the
    model's training dataset chosen."""
    datasets = Dataset.objects.filter(app=model.app).order_by("slug")
    return {
        "app": model.app,
        "model": model,
        "text": text,
        "feedback_concepts": version.concepts if version else ticked,
        "feedback_version": version.number if version else "",
        "predicted": predicted,
        "ticked": ticked,
        "datasets": list(datasets.values_list("slug", flat=True)),
        "chosen_dataset": model.params.get("dataset_id", ""),
    }


def _predicted(result: prediction.Prediction) -> list[str]:
    """The concepts of an answer that the explorer would suggest (SUGGESTION_MIN or more)."""
    shown = explorer.suggestion_settings(result.version)
    return [c.id for c in result.outputs[0] if shown.shows(c.id, c.value)]


def try_text(request: HttpRequest, app_id: str, model_id: str) -> HttpResponse:
    """GET: the Try your own text box; POST: the answer, a probability per concept."""
    model = get_app_model(request, app_id, model_id)
    answer: dict = {}
    if request.method == "POST":
        overrides = {
            "min_value": request.POST.get("min_value") or None,
            "max_concepts": request.POST.get("max_concepts") or None,
            "select_concepts": request.POST.getlist("select_concepts"),
        }
        chosen = {k: v for k, v in overrides.items() if v}
        if request.POST.get("ignore_thresholds"):
            chosen["concept_thresholds"] = {}
        text, limit = request.POST.get("text", ""), settings.PORTAL_MAX_TEXT_LENGTH
        if len(text) > limit:
            answer["error"] = (
                f"Your text is {len(text):,} characters long; the limit is {limit:,}. "
                "Shorten it and predict again."
            )
        elif not text.strip():
            answer["error"] = "Type a text first."
        else:
            try:
                answer["result"] = prediction.predict(
                    model, [text], request.POST.get("version"), chosen
                )
            except prediction.PredictionError as exc:
                answer["error"] = str(exc)
        answer["text"] = text
        if "result" in answer:
            result = answer["result"]
            predicted = _predicted(result)
            answer.update(
                _feedback_form(model, result.version, answer["text"], predicted, predicted)
            )
        if request.htmx:
            # The answer alone: the box around it is already on the page.
            return render(request, "portal/_try_result.html", answer)
    template = "portal/try_text.html#try-box" if request.htmx else "portal/try_text.html"
    return render(request, template, {**_trial_context(model), **answer})


@require_POST
def try_add(request: HttpRequest, app_id: str, model_id: str) -> HttpResponse:
    """Add to dataset: the tried text becomes an input labeled with the ticked concepts;
    a predicted concept left unticked becomes a negative label."""
    model = get_app_model(request, app_id, model_id)
    text = request.POST.get("text", "")
    positive = list(dict.fromkeys(request.POST.getlist("concepts")))
    negative = [c for c in dict.fromkeys(request.POST.getlist("predicted")) if c not in positive]
    dataset_id = request.POST.get("dataset", "")
    done, error = None, ""
    if not dataset_id:
        error = "Choose a dataset."
    else:
        dataset = get_dataset(model.app, dataset_id)
        try:
            done = feedback.add(model.app, dataset, text, positive, negative, request.user)
        except feedback.FeedbackError as exc:
            error = f"Nothing was added: {exc}."
    if not request.htmx:
        if done:
            messages.success(request, _added(done, dataset))
        else:
            messages.error(request, error)
        return redirect("portal:model-try", app_id, model_id)
    try:
        version = prediction.pick_version(model, request.POST.get("version"))
    except prediction.PredictionError:
        version = None
    predicted = request.POST.getlist("predicted")
    context = _feedback_form(model, version, text, predicted, positive)
    context["feedback_error"] = error
    if done:
        context["added"] = _added(done, dataset)
        context["inputs_url"] = reverse("portal:inputs", args=[app_id]) + f"?dataset={dataset.slug}"
    return render(request, "portal/_try_result.html#feedback", context)


def _added(done: feedback.Feedback, dataset: Dataset) -> str:
    """What was done, with the input's labels now (an existing input keeps its others)."""
    current = done.input.annotations.order_by("-value", "concept__slug").values_list(
        "concept__slug", "value"
    )
    named = [slug if value == Annotation.POSITIVE else f"not {slug}" for slug, value in current]
    labeled = f"labeled {', '.join(named)}" if named else "without labels"
    if done.created:
        return f"Added a new input to {dataset.slug}, {labeled}."
    return f"The text was already an input: it is in {dataset.slug} now, {labeled}."


def batch_page(request: HttpRequest, app_id: str, model_id: str) -> HttpResponse:
    """Upload a CSV of texts; a background job writes a CSV of probabilities."""
    model = get_app_model(request, app_id, model_id)
    context = _trial_context(model)
    if request.method == "POST":
        upload = request.FILES.get("file")
        version = context["trained_versions"].filter(number=request.POST.get("version")).first()
        if upload is None:
            context["error"] = "Choose a .csv file."
        elif upload.size > settings.PORTAL_MAX_UPLOAD_BYTES:
            context["error"] = "The file is larger than the upload limit."
        elif version is None:
            context["error"] = "Choose a trained version."
        else:
            job = PredictionJob.objects.create(
                model_version=version,
                user=request.user,
                filename=upload.name[:255],
                data=upload.read(),
            )
            try:
                enqueue_on_commit(
                    predict_csv, job.pk, on_failure=lambda: batch.fail_unqueued(job.pk)
                )
            except QueueUnavailable as exc:
                messages.error(request, str(exc))
            return redirect("portal:model-batch", app_id, model_id)
    context["jobs"] = PredictionJob.objects.filter(model_version__model=model).order_by("-created")[
        :10
    ]
    return render(request, "portal/batch.html", context)


@require_GET
def batch_job(request: HttpRequest, app_id: str, model_id: str, job_pk: int) -> HttpResponse:
    model = get_app_model(request, app_id, model_id)
    job = get_prediction_job(model, job_pk)
    return render(request, "portal/_batch_job.html", {"app": model.app, "model": model, "job": job})


@require_GET
def batch_download(request: HttpRequest, app_id: str, model_id: str, job_pk: int):
    model = get_app_model(request, app_id, model_id)
    job = get_prediction_job(model, job_pk)
    if job.status != PredictionJob.Status.DONE:
        raise Http404("This prediction has no result.")
    response = HttpResponse(bytes(job.result), content_type="text/csv; charset=utf-8")
    name = f"{model.slug}_v{job.model_version.number}_predictions_{job.pk}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns = [
    path("try/", try_text, name="model-try"),
    path("try/add/", try_add, name="model-try-add"),
    path("batch/", batch_page, name="model-batch"),
    path("batch/<int:job_pk>/", batch_job, name="model-batch-job"),
    path("batch/<int:job_pk>/result.csv", batch_download, name="model-batch-download"),
]
