"""Predict with a model's trained version: the same code path as Try your own text."""

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError

from portal import prediction
from portal.access import get_app_model
from portal.api.schemas import Forbid

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
