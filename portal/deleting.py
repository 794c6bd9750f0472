"""What deleting an app, dataset, concept or model takes with it, counted beforehand.

Confirmation pages state these counts; tests/test_integrity.py checks that confirming
removes exactly these rows and nothing of any other app.
"""

from django.db.models import Q
from django.template.defaultfilters import pluralize

from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Evaluation,
    ModelVersion,
    PredictionJob,
    TrainableModel,
)

# Singular and plural of each kind of thing a deletion can take.
NOUNS = {
    "datasets": "dataset,datasets",
    "dataset_versions": "dataset version,dataset versions",
    "inputs": "input,inputs",
    "labels": "label,labels",
    "concepts": "concept,concepts",
    "models": "model,models",
    "model_versions": "model version,model versions",
    "evaluations": "evaluation,evaluations",
    "prediction_jobs": "batch prediction,batch predictions",
}


def app_contents(app: App) -> dict[str, int]:
    evaluations = Evaluation.objects.filter(
        Q(model_version__model__app=app) | Q(dataset_version__dataset__app=app)
    )
    return {
        "datasets": app.datasets.count(),
        "dataset_versions": DatasetVersion.objects.filter(dataset__app=app).count(),
        "inputs": app.inputs.count(),
        "labels": Annotation.objects.filter(input__app=app).count(),
        "concepts": app.concepts.count(),
        "models": app.trainable_models.count(),
        "model_versions": ModelVersion.objects.filter(model__app=app).count(),
        "evaluations": evaluations.distinct().count(),
        "prediction_jobs": PredictionJob.objects.filter(model_version__model__app=app).count(),
    }


def dataset_contents(dataset: Dataset) -> dict[str, int]:
    """The dataset's versions and the evaluations made on them; its inputs stay."""
    return {
        "dataset_versions": dataset.versions.count(),
        "evaluations": Evaluation.objects.filter(dataset_version__dataset=dataset).count(),
    }


def concept_contents(concept: Concept) -> dict[str, int]:
    """The concept's labels; dataset versions keep their copies."""
    return {"labels": concept.annotations.count()}


def model_contents(model: TrainableModel) -> dict[str, int]:
    return {
        "model_versions": model.versions.count(),
        "evaluations": Evaluation.objects.filter(model_version__model=model).count(),
        "prediction_jobs": PredictionJob.objects.filter(model_version__model=model).count(),
    }


def describe(contents: dict[str, int]) -> str:
    """What goes, as in "3 datasets, 120 inputs and 1 model"; kinds with none are left out."""
    parts = [f"{n} {pluralize(n, NOUNS[kind])}" for kind, n in contents.items() if n]
    if not parts:
        return "nothing else"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
