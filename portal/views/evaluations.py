"""Evaluations: evaluate a model version on a dataset version, read and act on the results."""

import numpy as np
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from portal import evaluating
from portal.access import get_app, get_app_model, get_evaluation, get_model_version
from portal.ids import as_number
from portal.models import App, DatasetVersion, Evaluation, TrainableModel
from portal.queue import QueueUnavailable
from portal.views import compare

SELECTION_LIMIT = 200


def dataset_versions(app: App) -> list[DatasetVersion]:
    """The app's ready dataset versions, by dataset, newest first: what can be evaluated on."""
    return list(
        DatasetVersion.objects.filter(dataset__app=app, status=DatasetVersion.Status.READY)
        .select_related("dataset")
        .order_by("dataset__slug", "-number")
    )


def evaluations_of(queryset) -> list[Evaluation]:
    return list(
        queryset.select_related("model_version__model", "dataset_version__dataset").defer(
            "data", "model_version__head", "model_version__log"
        )
    )


@require_POST
def evaluate(request: HttpRequest, app_id: str, model_id: str, number: int) -> HttpResponse:
    """Start an evaluation of a version on the chosen dataset version."""
    model = get_app_model(request, app_id, model_id)
    version = get_model_version(model, number)
    chosen = as_number(request.POST.get("dataset_version", ""))
    dataset_version = (
        DatasetVersion.objects.filter(dataset__app=model.app, pk=chosen)
        .select_related("dataset")
        .first()
    )
    if dataset_version is None:
        messages.error(request, "Choose a dataset version to evaluate on.")
        return redirect(f"{model.get_absolute_url()}?version={number}#evaluate")
    unseen_only = bool(request.POST.get("unseen_only"))
    try:
        evaluation = evaluating.start_evaluation(
            version, dataset_version, request.user, unseen_only=unseen_only
        )
    except (evaluating.EvaluationError, QueueUnavailable) as exc:
        messages.error(request, str(exc))
        return redirect(f"{model.get_absolute_url()}?version={number}#evaluate")
    return redirect("portal:evaluation", model.app.slug, evaluation.pk)


@require_GET
def evaluation_list(request: HttpRequest, app_id: str) -> HttpResponse:
    """Every evaluation of the app, to open, compare or delete."""
    app = get_app(request, app_id)
    evaluations = evaluations_of(Evaluation.objects.filter(model_version__model__app=app))
    context = {"app": app, "section": "evaluations", "evaluations": evaluations}
    return render(request, "portal/evaluations.html", context)


def _results_context(app: App, evaluation: Evaluation) -> dict:
    version = evaluation.model_version
    context = {
        "app": app,
        "section": "models",
        "model": version.model,
        "version": version,
        "evaluation": evaluation,
        "dataset_version": evaluation.dataset_version,
    }
    if evaluation.status == Evaluation.Status.EVALUATED:
        metrics = evaluation.metrics
        concepts = metrics["concepts"]
        context.update(
            metrics=metrics,
            concepts=concepts,
            matrix=_matrix_rows(metrics["confusion_matrix"]),
            thresholds=version.params.get("inference_params", {}).get("concept_thresholds", {}),
            client_data={
                "concepts": [c["concept"] for c in concepts],
                "sweep": metrics["sweep"],
                "roc_auc": [c["roc_auc"] for c in concepts],
            },
            mistakes=_mistakes(evaluation),
        )
    return context


def _matrix_rows(matrix: dict) -> list[dict]:
    """The confusion matrix as template rows: each cell with its count and mean probability."""
    labels = matrix["labels"]
    return [
        {
            "actual": actual,
            "total": sum(matrix["counts"][i]),
            "cells": [
                {
                    "predicted": predicted,
                    "count": matrix["counts"][i][j],
                    "mean": matrix["mean_probability"][i][j],
                    "diagonal": i == j,
                }
                for j, predicted in enumerate(labels)
            ],
        }
        for i, actual in enumerate(labels)
    ]


def _mistakes(evaluation: Evaluation) -> list[dict]:
    mistakes = evaluation.metrics.get("mistakes", [])
    texts = dict(
        evaluation.dataset_version.rows.filter(pk__in=[m["row"] for m in mistakes]).values_list(
            "pk", "text"
        )
    )
    return [{**m, "text": texts.get(m["row"], "")} for m in mistakes]


@require_GET
def evaluation_detail(request: HttpRequest, app_id: str, pk: int) -> HttpResponse:
    app = get_app(request, app_id)
    evaluation = get_evaluation(app, pk)
    return render(request, "portal/evaluation.html", _results_context(app, evaluation))


@require_GET
def evaluation_status(request: HttpRequest, app_id: str, pk: int) -> HttpResponse:
    """The progress panel, polled while the evaluation waits or runs; reloads when done."""
    app = get_app(request, app_id)
    evaluation = get_evaluation(app, pk)
    response = render(
        request, "portal/_evaluation_status.html", {"app": app, "evaluation": evaluation}
    )
    if evaluation.is_finished and request.htmx:
        response["HX-Refresh"] = "true"
    return response


def _evaluated(request: HttpRequest, app_id: str, pk: int) -> tuple[App, Evaluation]:
    app = get_app(request, app_id)
    evaluation = get_evaluation(app, pk)
    if evaluation.status != Evaluation.Status.EVALUATED:
        raise Http404("This evaluation has no results.")
    return app, evaluation


@require_GET
def selection(request: HttpRequest, app_id: str, pk: int) -> HttpResponse:
    """The inputs behind a confusion-matrix cell, or behind a concept's TP/FP/FN/TN count at
    a threshold, with their probabilities: the selection details."""
    app, evaluation = _evaluated(request, app_id, pk)
    concepts = list(evaluation.model_version.concepts)
    try:
        if "actual" in request.GET:
            actual, predicted = request.GET["actual"], request.GET.get("predicted", "")
            picked = evaluating.cell(evaluation, actual, predicted)
            title = f"Labeled {actual}, predicted {predicted}"
        else:
            picked, title = _count_cell(evaluation, concepts, request.GET)
        inputs = evaluating.scored_inputs(evaluation, picked, SELECTION_LIMIT)
    except evaluating.EvaluationError as exc:
        raise Http404(str(exc)) from exc
    context = {
        "app": app,
        "evaluation": evaluation,
        "title": title,
        "inputs": inputs,
        "total": len(picked),
        "limit": SELECTION_LIMIT,
    }
    return render(request, "portal/_selection.html", context)


CELLS = {
    "tp": ("true positives", True, True),
    "fp": ("false positives", False, True),
    "fn": ("false negatives", True, False),
    "tn": ("true negatives", False, False),
}


def _count_cell(evaluation: Evaluation, concepts: list[str], query) -> tuple[np.ndarray, str]:
    concept, kind = query.get("concept", ""), query.get("cell", "")
    if concept not in concepts or kind not in CELLS:
        raise evaluating.EvaluationError("no such selection")
    try:
        threshold = float(query.get("threshold", 0.5))
    except ValueError:
        raise evaluating.EvaluationError("the threshold must be a number") from None
    if not 0.0 <= threshold <= 1.0:
        raise evaluating.EvaluationError("the threshold must be between 0 and 1")
    scores = evaluating.load_scores(evaluation)
    j = concepts.index(concept)
    labels = evaluating.known_labels(scores.Y)[:, j]
    name, positive, predicted = CELLS[kind]
    p = scores.P[:, j]
    mask = (labels == (1 if positive else 0)) & ((p >= threshold) == predicted)
    picked = np.flatnonzero(mask)
    # The most telling first: the highest probabilities of predictions, the lowest of misses.
    picked = picked[np.argsort(-p[picked] if predicted else p[picked], kind="stable")]
    return picked, f"{concept}: {name} at threshold {threshold:g}"


@require_POST
def save_thresholds(request: HttpRequest, app_id: str, pk: int) -> HttpResponse:
    """Save per-concept thresholds (given, or reaching a target precision) into the
    evaluated version's inference settings."""
    app, evaluation = _evaluated(request, app_id, pk)
    concepts = list(evaluation.model_version.concepts)
    try:
        if request.POST.get("target_precision"):
            target = _number(request.POST["target_precision"], "the target precision")
            found = evaluating.thresholds_for_precision(evaluation, target)
            thresholds = {c: t for c, t in found.items() if t is not None}
            unreachable = [c for c, t in found.items() if t is None]
            if unreachable:
                messages.warning(
                    request,
                    f"No threshold reaches precision {target:g} for {', '.join(unreachable)}; "
                    "its threshold was left as it was.",
                )
        else:
            thresholds = {
                c: _number(request.POST[f"threshold-{c}"], f"the threshold for {c}")
                for c in concepts
                if request.POST.get(f"threshold-{c}", "") != ""
            }
        if not thresholds:
            raise evaluating.EvaluationError("there was no threshold to save")
        evaluating.save_thresholds(evaluation, thresholds)
    except evaluating.EvaluationError as exc:
        messages.error(request, f"Nothing was saved: {exc}.")
        return redirect("portal:evaluation", app.slug, evaluation.pk)
    saved = ", ".join(f"{c} ≥ {t:.2f}" for c, t in thresholds.items())
    messages.success(
        request,
        f"Saved to version v{evaluation.model_version.number}'s inference settings: {saved}. "
        "Try your own text and the API now use them.",
    )
    return redirect("portal:evaluation", app.slug, evaluation.pk)


def _number(value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise evaluating.EvaluationError(f"{what} must be a number") from None


@require_POST
def evaluation_delete(request: HttpRequest, app_id: str, pk: int) -> HttpResponse:
    app = get_app(request, app_id)
    evaluation = get_evaluation(app, pk)
    model: TrainableModel = evaluation.model_version.model
    evaluation.delete()
    messages.success(request, "The evaluation was deleted.")
    return redirect(f"{model.get_absolute_url()}#evaluations")


urlpatterns = [
    path("", evaluation_list, name="evaluations"),
    path("compare/", compare.compare, name="evaluations-compare"),
    path("<int:pk>/", evaluation_detail, name="evaluation"),
    path("<int:pk>/status/", evaluation_status, name="evaluation-status"),
    path("<int:pk>/selection/", selection, name="evaluation-selection"),
    path("<int:pk>/thresholds/", save_thresholds, name="evaluation-thresholds"),
    path("<int:pk>/delete/", evaluation_delete, name="evaluation-delete"),
]

model_urlpatterns = [
    path("<str:model_id>/versions/<int:number>/evaluate/", evaluate, name="model-evaluate"),
]
