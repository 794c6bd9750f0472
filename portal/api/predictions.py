"""Predict with a model's trained version (the same code path as Try your own text), and
feed a corrected prediction back into a dataset."""

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from portal import feedback, prediction
from portal.access import get_app_model, get_dataset
from portal.api.inputs import ConceptIds, InputOut, _input_json, _named, _rows
from portal.api.schemas import Forbid
from portal.models import Input

router = Router(tags=["Predictions"])


class PredictIn(Forbid):
    texts: list[str]
    version_id: str | int | None = None
    inference_params: dict | None = None


class PredictedConceptOut(Schema):
    id: str
    name: str
    value: float


class OutputOut(Schema):
    concepts: list[PredictedConceptOut]


class PredictOut(Schema):
    model_version_id: str
    outputs: list[OutputOut]


@router.post(
    "/apps/{app_id}/models/{model_id}/predict", response=PredictOut, url_name="api-predict"
)
def predict(request: HttpRequest, app_id: str, model_id: str, body: PredictIn) -> dict:
    """A probability per concept for each text (at most PORTAL_MAX_PREDICT_TEXTS texts)."""
    model = get_app_model(request, app_id, model_id)
    try:
        result = prediction.predict(model, body.texts, body.version_id, body.inference_params)
    except prediction.PredictionError as exc:
        raise HttpError(400, str(exc)) from exc
    return {
        "model_version_id": str(result.version.number),
        "outputs": [
            {"concepts": [{"id": c.id, "name": c.name, "value": c.value} for c in output]}
            for output in result.outputs
        ],
    }


class FeedbackIn(Forbid):
    text: str
    concepts: ConceptIds = []
    negative_concepts: ConceptIds = []
    dataset_id: str = ""


@router.post(
    "/apps/{app_id}/models/{model_id}/feedback",
    response={200: InputOut, 201: InputOut},
    url_name="api-feedback",
)
def add_feedback(request: HttpRequest, app_id: str, model_id: str, body: FeedbackIn) -> Status:
    """A prediction corrected: the text becomes an input of the dataset (by default the
    model's training dataset) labeled with `concepts` and `negative_concepts`, which must
    exist in the app. 201 with the new input; 200 when the text was already an input of
    the app: it is put in the dataset and given these labels (its others stay), not added
    twice."""
    model = get_app_model(request, app_id, model_id)
    dataset_id = body.dataset_id or model.params.get("dataset_id", "")
    if not dataset_id:
        raise HttpError(400, "dataset_id: give the dataset to add the text to")
    dataset = _named(get_dataset, model.app, dataset_id, "dataset")
    try:
        done = feedback.add(
            model.app, dataset, body.text, body.concepts, body.negative_concepts, request.user
        )
    except feedback.FeedbackError as exc:
        raise HttpError(400, str(exc)) from exc
    item = _rows(Input.objects.filter(pk=done.input.pk)).get()
    return Status(201 if done.created else 200, _input_json(item))
