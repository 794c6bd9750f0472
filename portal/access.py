"""Every view fetches objects through these helpers: a user sees only their own."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from portal.models import (
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Evaluation,
    ImportJob,
    Input,
    ModelVersion,
    PredictionJob,
    TrainableModel,
)


def get_app(request: HttpRequest, app_id: str) -> App:
    return get_object_or_404(App, owner=request.user, slug=app_id)


def get_concept(app: App, concept_id: str) -> Concept:
    return get_object_or_404(Concept, app=app, slug=concept_id)


def get_dataset(app: App, dataset_id: str) -> Dataset:
    return get_object_or_404(Dataset, app=app, slug=dataset_id)


def get_version(dataset: Dataset, number: int) -> DatasetVersion:
    return get_object_or_404(DatasetVersion, dataset=dataset, number=number)


def get_input(app: App, input_pk: int) -> Input:
    return get_object_or_404(Input, app=app, pk=input_pk)


def get_import_job(app: App, job_pk: int) -> ImportJob:
    return get_object_or_404(ImportJob, app=app, pk=job_pk)


def get_model(app: App, model_id: str) -> TrainableModel:
    return get_object_or_404(TrainableModel, app=app, slug=model_id)


def get_app_model(request: HttpRequest, app_id: str, model_id: str) -> TrainableModel:
    """The user's model `model_id` of app `app_id`, with its app, in one query."""
    return get_object_or_404(
        TrainableModel.objects.select_related("app"),
        app__owner=request.user,
        app__slug=app_id,
        slug=model_id,
    )


def get_model_version(model: TrainableModel, number: int) -> ModelVersion:
    return get_object_or_404(ModelVersion, model=model, number=number)


def get_prediction_job(model: TrainableModel, job_pk: int) -> PredictionJob:
    return get_object_or_404(PredictionJob, model_version__model=model, pk=job_pk)


def get_evaluation(app: App, pk: int) -> Evaluation:
    return get_object_or_404(
        Evaluation.objects.select_related("model_version__model", "dataset_version__dataset").defer(
            "data", "model_version__head"
        ),
        model_version__model__app=app,
        pk=pk,
    )
