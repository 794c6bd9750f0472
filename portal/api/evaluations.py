"""Evaluations routes of the REST API: evaluate a trained version, read the results, compare.

The numbers are the ones `portal.evaluating` stored (`Evaluation.metrics`, computed by
`classifier.evaluation` at threshold 0.5) and, for comparisons, `portal.comparing`'s; the
API renames nothing but the summary's keys and recomputes nothing.
"""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from portal import comparing, evaluating
from portal.access import get_app, get_dataset, get_evaluation
from portal.api.models import StatusOut, TimesOut, get_version, status_of
from portal.api.schemas import Forbid
from portal.ids import as_number
from portal.models import App, Dataset, DatasetVersion, Evaluation, ModelVersion

router = Router(tags=["Evaluations"])

EVALUATION_STATUS = {
    Evaluation.Status.EVALUATED: "Model was evaluated",
    Evaluation.Status.EVALUATING: "Model is being evaluated",
    Evaluation.Status.QUEUED: "Model is queued for evaluation",
    Evaluation.Status.FAILED: "Model evaluation failed",
}
# The stored summary's keys, and the API's names for them.
SUMMARY_KEYS = {
    "macro_roc_auc": "macro_avg_roc_auc",
    "macro_f1": "macro_avg_f1_score",
    "macro_precision": "macro_avg_precision",
    "macro_recall": "macro_avg_recall",
    "accuracy": "accuracy",
    "n_rows": "n_rows",
}


class EvaluateIn(Forbid):
    dataset_id: str
    dataset_version_id: str | int | None = None  # default: the dataset's latest ready one
    eval_id: str | None = Field(
        None, max_length=100, description="A name for the evaluation, echoed in its answers"
    )
    use_kfold: bool | None = Field(
        None, description="true: k-fold cross-validation, on the training version only"
    )
    unseen_only: bool = Field(
        False,
        description="on another dataset version: score only the inputs (by text) that the "
        "model version was not trained on",
    )


class EvaluationSummaryOut(Schema):
    threshold: float
    macro_avg_roc_auc: float | None
    macro_avg_f1_score: float
    macro_avg_precision: float
    macro_avg_recall: float
    accuracy: float | None  # mutually exclusive concepts only
    n_rows: int


class ConceptMetricsOut(Schema):
    concept: str
    roc_auc: float | None
    total: int  # inputs with a known label for the concept
    labeled: int  # of which positive
    predicted: int
    tp: int
    fn: int
    fp: int
    tn: int
    recall: float
    precision: float
    f1: float


class ConfusionMatrixOut(Schema):
    labels: list[str]  # rows: the labeled concept; columns: the most probable one
    counts: list[list[int]]
    mean_probability: list[list[float | None]]


class RocOut(Schema):
    fpr: list[float]
    tpr: list[float]


class PrecisionRecallOut(Schema):
    recall: list[float]
    precision: list[float]


class CurvesOut(Schema):
    concept: str
    roc: RocOut
    precision_recall: PrecisionRecallOut


class EvaluationOut(Schema):
    id: int
    eval_id: str | None  # the name given when it was started
    model_id: str
    model_version_id: str
    dataset_id: str
    dataset_version_id: str
    use_kfold: bool
    method: str
    folds: int | None
    folds_note: str
    seen_in_training: int | None  # held-out: inputs (by text) the training data holds too
    total_inputs: int | None  # held-out: inputs of the evaluated dataset version
    unseen_only: bool  # only the inputs not in the training data were scored
    overlap: str  # seen_in_training in words, "" when none
    status: StatusOut
    progress: float  # 0..1
    stage: str
    error: str
    timings: TimesOut
    summary: EvaluationSummaryOut | None  # once evaluated


class EvaluationDetailOut(EvaluationOut):
    per_concept: list[ConceptMetricsOut] | None
    confusion_matrix: ConfusionMatrixOut | None
    curves: list[CurvesOut] | None


def summary_of(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    summary = metrics["summary"]
    return {"threshold": metrics["threshold"]} | {
        name: summary[key] for key, name in SUMMARY_KEYS.items()
    }


def concept_of(entry: dict) -> dict:
    counts = ("labeled", "predicted", "tp", "fn", "fp", "tn", "recall", "precision", "f1")
    return {
        "concept": entry["concept"],
        "roc_auc": entry["roc_auc"],
        "total": entry["n"],
        **{name: entry[name] for name in counts},
    }


def evaluation_out(evaluation: Evaluation, details: bool = False) -> dict:
    version, dataset_version = evaluation.model_version, evaluation.dataset_version
    metrics = evaluation.metrics if evaluation.status == Evaluation.Status.EVALUATED else None
    out = {
        "id": evaluation.pk,
        "eval_id": evaluation.label or None,
        "model_id": version.model.slug,
        "model_version_id": str(version.number),
        "dataset_id": dataset_version.dataset.slug,
        "dataset_version_id": str(dataset_version.number),
        "use_kfold": evaluation.kfold,
        "method": evaluation.method,
        "folds": evaluation.folds,
        "folds_note": evaluation.folds_note,
        "seen_in_training": evaluation.seen,
        "total_inputs": evaluation.total,
        "unseen_only": evaluation.unseen_only,
        "overlap": evaluation.overlap,
        "status": status_of(evaluation.status, Evaluation.Status, EVALUATION_STATUS),
        "progress": evaluation.progress,
        "stage": evaluation.stage,
        "error": evaluation.error,
        "timings": {
            "created": evaluation.created,
            "started": evaluation.started,
            "finished": evaluation.finished,
        },
        "summary": summary_of(metrics),
    }
    if details:
        out.update(per_concept=None, confusion_matrix=None, curves=None)
        if metrics:
            matrix = metrics["confusion_matrix"]
            out.update(
                per_concept=[concept_of(c) for c in metrics["concepts"]],
                confusion_matrix={
                    key: matrix[key] for key in ("labels", "counts", "mean_probability")
                },
                curves=[curves_of(c) for c in metrics["concepts"]],
            )
    return out


def curves_of(entry: dict) -> dict:
    roc, pr = entry["roc_curve"], entry["pr_curve"]  # [] when all labels are alike
    return {
        "concept": entry["concept"],
        "roc": {"fpr": [x for x, _ in roc], "tpr": [y for _, y in roc]},
        "precision_recall": {"recall": [x for x, _ in pr], "precision": [y for _, y in pr]},
    }


def evaluations_of(app: App) -> QuerySet[Evaluation]:
    return (
        Evaluation.objects.filter(model_version__model__app=app)
        .select_related("model_version__model", "dataset_version__dataset")
        .defer("data", "model_version__head", "model_version__log")
    )


def _dataset_version(dataset: Dataset, wanted: str | int | None) -> DatasetVersion:
    """The version `wanted` of the dataset, or by default its latest ready one."""
    if wanted is None:
        latest = dataset.versions.filter(status=DatasetVersion.Status.READY).first()
        if latest is None:
            raise HttpError(
                400, f"dataset {dataset.slug} has no ready version to evaluate on; make one first"
            )
        return latest
    number = as_number(wanted)
    if number is None:
        raise HttpError(400, 'dataset_version_id: must be a version number such as "1"')
    found = dataset.versions.filter(number=number).first()
    if found is None:
        raise Http404(f"not found: dataset {dataset.slug} has no version {number}")
    return found


def _check_method(
    version: ModelVersion, dataset_version: DatasetVersion, use_kfold: bool | None
) -> None:
    """k-fold on the version the model version was trained on, held-out on any other."""
    kfold = dataset_version.pk == version.dataset_version_id
    chosen = f"{dataset_version.dataset.slug} v{dataset_version.number}"
    if use_kfold and not kfold:
        trained_on = version.dataset_version
        where = (
            f"{trained_on.dataset.slug} v{trained_on.number}"
            if trained_on
            else "a dataset version that was deleted"
        )
        raise HttpError(
            400,
            f"use_kfold: k-fold cross-validation runs only on the dataset version that version "
            f"{version.number} was trained on ({where}); {chosen} is scored as a held-out test "
            "set: leave use_kfold out or set it to false",
        )
    if use_kfold is False and kfold:
        raise HttpError(
            400,
            f"use_kfold: version {version.number} was trained on {chosen}, so a held-out "
            "evaluation needs another dataset version; on this one, leave use_kfold out or set "
            "it to true for k-fold cross-validation",
        )


@router.post(
    "/apps/{app_id}/models/{model_id}/versions/{version_id}/evaluations",
    response={202: EvaluationOut},
    url_name="api-evaluations",
)
def evaluate(
    request: HttpRequest, app_id: str, model_id: str, version_id: str, body: EvaluateIn
) -> Status:
    """Evaluate a trained version on a dataset version of its app: by k-fold
    cross-validation on the version it was trained on, as a held-out test set on any other.
    Poll the evaluation until its status is MODEL-EVALUATED (21300) or
    MODEL-EVALUATION-FAILED (21317)."""
    model, version = get_version(request, app_id, model_id, version_id)
    dataset = _get_dataset(model.app, body.dataset_id)
    dataset_version = _dataset_version(dataset, body.dataset_version_id)
    _check_method(version, dataset_version, body.use_kfold)
    try:
        evaluation = evaluating.start_evaluation(
            version, dataset_version, request.user, body.eval_id or "", body.unseen_only
        )
    except evaluating.EvaluationError as exc:
        raise HttpError(400, str(exc)) from exc
    return Status(202, evaluation_out(evaluation))


def _get_dataset(app: App, dataset_id: str) -> Dataset:
    try:
        return get_dataset(app, dataset_id)
    except Http404:
        raise Http404(f"not found: app {app.slug} has no dataset {dataset_id!r}") from None


@router.get(
    "/apps/{app_id}/models/{model_id}/versions/{version_id}/evaluations",
    response=list[EvaluationOut],
)
def list_evaluations(
    request: HttpRequest, app_id: str, model_id: str, version_id: str
) -> list[dict]:
    """The version's evaluations, newest first, with their summaries."""
    model, version = get_version(request, app_id, model_id, version_id)
    evaluations = evaluations_of(model.app).filter(model_version=version)
    return [evaluation_out(e) for e in evaluations]


@router.get(
    "/apps/{app_id}/models/{model_id}/versions/{version_id}/evaluations/{eval_pk}",
    response=EvaluationDetailOut,
    url_name="api-evaluation",
)
def get_evaluation_results(
    request: HttpRequest, app_id: str, model_id: str, version_id: str, eval_pk: str
) -> dict:
    """An evaluation's status and, once evaluated, its summary, numbers per concept,
    confusion matrix and curves."""
    model, version = get_version(request, app_id, model_id, version_id)
    pk = as_number(eval_pk)
    if pk is None:
        raise Http404
    evaluation = get_evaluation(model.app, pk)
    if evaluation.model_version_id != version.pk:
        raise Http404
    return evaluation_out(evaluation, details=True)


# Comparison


class CompareIn(Forbid):
    evaluations: list[int]


class ComparedOut(Schema):
    id: int
    label: str
    model_id: str
    model_version_id: str
    dataset_id: str
    dataset_version_id: str
    method: str
    summary: EvaluationSummaryOut


class ConceptRowOut(Schema):
    evaluation_id: int
    label: str
    metrics: ConceptMetricsOut | None  # null when the evaluated model has no such concept
    best: list[str]  # the columns where this evaluation beats the others


class ConceptComparisonOut(Schema):
    concept: str
    rows: list[ConceptRowOut]


class FlipOut(Schema):
    row: int  # the dataset version's row
    text: str
    concept: str
    label: int  # 1 positive, 0 negative, -1 unknown
    before: float
    after: float
    now_right: bool | None


class FlipsOut(Schema):
    before_evaluation_id: int
    after_evaluation_id: int
    total: int
    inputs: int
    fixed: int
    broken: int
    limit: int
    items: list[FlipOut]


class ComparisonOut(Schema):
    description: str
    differs: str  # "dataset", "model" or "both"
    evaluations: list[ComparedOut]
    concepts: list[ConceptComparisonOut]
    flips: FlipsOut | None  # two versions of one model on one dataset version only
    flips_error: str


def _compared(app: App, ids: list[int]) -> list[Evaluation]:
    """The app's finished evaluations `ids`: 404 for any that isn't the app's, 400 for
    unfinished ones or too few or too many."""
    wanted = list(dict.fromkeys(ids))
    valid = [pk for pk in wanted if as_number(pk) is not None]
    found = {e.pk: e for e in evaluations_of(app).filter(pk__in=valid)}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise Http404(
            f"not found: evaluation {', '.join(map(str, missing))} of app {app.slug} "
            "(it doesn't exist, or it isn't yours)"
        )
    unfinished = [e for e in found.values() if e.status != Evaluation.Status.EVALUATED]
    if unfinished:
        states = ", ".join(f"{e.pk} ({e.get_status_display()})" for e in unfinished)
        raise HttpError(400, f"evaluations: only evaluated ones can be compared, not {states}")
    if len(wanted) < 2:
        raise HttpError(400, "evaluations: give at least two evaluations to compare")
    if len(wanted) > comparing.MAX_COMPARED:
        raise HttpError(
            400, f"evaluations: at most {comparing.MAX_COMPARED} can be compared at once"
        )
    return [found[pk] for pk in wanted]


@router.post("/apps/{app_id}/evaluations/compare", response=ComparisonOut, url_name="api-compare")
def compare(request: HttpRequest, app_id: str, body: CompareIn) -> dict:
    """Finished evaluations side by side: their summaries, each concept's numbers, and for
    two versions of one model on one dataset version, the inputs whose prediction changed."""
    app = get_app(request, app_id)
    comparison = comparing.compare(_compared(app, body.evaluations))
    flips = comparison.flips
    return {
        "description": comparison.description,
        "differs": comparison.differs,
        "evaluations": [compared_out(item) for item in comparison.compared],
        "concepts": [
            {
                "concept": concept.concept,
                "rows": [
                    {
                        "evaluation_id": row.compared.evaluation.pk,
                        "label": row.compared.label,
                        "metrics": concept_of(row.metrics) if row.metrics else None,
                        "best": sorted(row.best),
                    }
                    for row in concept.rows
                ],
            }
            for concept in comparison.concepts
        ],
        "flips": flips_of(flips) if flips else None,
        "flips_error": comparison.flips_error,
    }


def compared_out(item: comparing.Compared) -> dict[str, Any]:
    """The evaluation as ComparedOut shows it (the schema leaves out the other keys)."""
    return {**evaluation_out(item.evaluation), "label": item.label}


def flips_of(flips: comparing.Flips) -> dict[str, Any]:
    return {
        "before_evaluation_id": flips.before.evaluation.pk,
        "after_evaluation_id": flips.after.evaluation.pk,
        "total": flips.total,
        "inputs": flips.inputs,
        "fixed": flips.fixed,
        "broken": flips.broken,
        "limit": flips.limit,
        "items": [
            {
                "row": f.row,
                "text": f.text,
                "concept": f.concept,
                "label": f.label,
                "before": f.before,
                "after": f.after,
                "now_right": f.now_right,
            }
            for f in flips.items
        ],
    }
