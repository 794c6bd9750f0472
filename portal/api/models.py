"""Models routes of the REST API: model types, models, their parameters, training and versions.

The parameters are the set-up form's (`portal.forms.ModelSetupForm`) in the portal's shape,
`portal.models.default_params`. A PATCH merges into them and checks each value it sets the
way the form does; whether the dataset, version and concepts exist is for
`portal.training.check_params` to say when training starts.
"""

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import IntegerChoices
from django.http import Http404, HttpRequest
from ninja import Body, Router, Schema, Status
from ninja.errors import HttpError

from classifier import embedders
from portal import training
from portal.access import get_app, get_app_model, get_model_version
from portal.api.schemas import Forbid, saved
from portal.forms import ModelCreateForm, ModelSetupForm
from portal.ids import ID_HELP, as_number, is_valid_id
from portal.models import HEADS, ModelVersion, TrainableModel, default_params

router = Router(tags=["Models"])

NESTED = ("train_params", "inference_params")
# Keys a model's parameters may have beyond the template's.
OPTIONAL = {"inference_params": ("concept_thresholds",)}
MAX_CONCEPTS = ModelSetupForm.base_fields["max_concepts"].max_value
TRAINING_STATUS = {
    ModelVersion.Status.TRAINED: "Model is trained and ready",
    ModelVersion.Status.TRAINING: "Model is being trained",
    ModelVersion.Status.QUEUED: "Model is queued for training",
    ModelVersion.Status.FAILED: "Model training failed",
}


class StatusOut(Schema):
    code: int
    name: str
    description: str


def status_of(value: int, choices: type[IntegerChoices], descriptions: dict[int, str]) -> dict:
    choice = choices(value)
    return {"code": choice.value, "name": choice.label, "description": descriptions[choice]}


# Model types


class ModelTypeOut(Schema):
    id: str
    title: str
    description: str
    input_type: str
    trainable: bool
    params: dict[str, Any]
    base_embed_models: list[str]


@router.get("/model-types", response=list[ModelTypeOut], url_name="api-model-types")
def model_types(request: HttpRequest) -> list[dict]:
    """The model types you can create and train, each with its parameter template."""
    return [
        {
            "id": TrainableModel.TYPE,
            "title": "Transfer Learn",
            "description": (
                "Classify texts with a logistic-regression head on top of a base embedding model"
            ),
            "input_type": "text",
            "trainable": True,
            "params": default_params(),
            "base_embed_models": embedders.available(),
        }
    ]


# Models


class ModelIn(Forbid):
    id: str
    model_type_id: str
    description: str = ""


class ModelOut(Schema):
    id: str
    app_id: str
    model_type_id: str
    description: str
    created_at: datetime


def model_out(model: TrainableModel) -> dict:
    return {
        "id": model.slug,
        "app_id": model.app.slug,
        "model_type_id": model.model_type,
        "description": model.description,
        "created_at": model.created,
    }


@router.get("/apps/{app_id}/models", response=list[ModelOut], url_name="api-models")
def list_models(request: HttpRequest, app_id: str) -> list[dict]:
    app = get_app(request, app_id)
    return [model_out(model) for model in app.trainable_models.all()]


@router.post("/apps/{app_id}/models", response={201: ModelOut})
def create_model(request: HttpRequest, app_id: str, body: ModelIn) -> Status:
    """A new model; set its parameters next, then train it."""
    app = get_app(request, app_id)
    if body.model_type_id != TrainableModel.TYPE:
        raise HttpError(
            400,
            f"model_type_id: unknown model type {body.model_type_id!r}; "
            f"the trainable model types are: {TrainableModel.TYPE}",
        )
    form = ModelCreateForm({"slug": body.id, "description": body.description}, app=app)
    model = saved(form, f"This app already has a model called “{body.id}”.")
    return Status(201, model_out(model))


@router.get("/apps/{app_id}/models/{model_id}", response=ModelOut, url_name="api-model")
def get_model(request: HttpRequest, app_id: str, model_id: str) -> dict:
    return model_out(get_app_model(request, app_id, model_id))


# Parameters


def complete(params: dict) -> dict:
    """`params` with the template's defaults for any key it lacks."""
    full = default_params()
    for key, value in params.items():
        if key in NESTED and isinstance(value, dict):
            full[key].update(value)
        else:
            full[key] = value
    return full


class InvalidParam(ValueError):
    """A parameter's value is wrong; the message says what it must be."""


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParam
    return float(value)


def _dataset_id(value: object) -> str:
    if not isinstance(value, str) or not (value == "" or is_valid_id(value)):
        raise InvalidParam(f'must be a dataset ID or "" ({ID_HELP})')
    return value


def _dataset_version_id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not (value == "" or as_number(value)):
        raise InvalidParam('must be a version number such as "1", or ""')
    return str(as_number(value) or "")


def _id_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParam("must be a list of concept IDs")
    for item in value:
        if not is_valid_id(item):
            raise InvalidParam(f"must be a list of concept IDs: {item!r} is not one ({ID_HELP})")
    return list(dict.fromkeys(value))


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidParam("must be true or false")
    return value


def _base_model(value: object) -> str:
    available = embedders.available()
    if value not in available:
        raise InvalidParam(f"must be one of the base embedding models: {', '.join(available)}")
    return str(value)


def _enrich(value: object) -> str:
    if value not in ("Automatic", "Disabled"):
        raise InvalidParam('must be "Automatic" or "Disabled"')
    return str(value)


def _c(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = _number(value)
    except InvalidParam:
        number = 0.0
    if number <= 0:
        raise InvalidParam("must be null (chosen automatically) or a number above 0, such as 1")
    return number


def _class_weight(value: object) -> str | None:
    if value not in (None, "balanced"):
        raise InvalidParam('must be null or "balanced"')
    return value


def _head(value: object) -> str:
    if value not in HEADS:
        raise InvalidParam("must be " + ", ".join(f'"{head}"' for head in HEADS))
    return str(value)


def _min_value(value: object) -> float:
    try:
        number = _number(value)
    except InvalidParam:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise InvalidParam("must be a number from 0 to 1")
    return number


def _max_concepts(value: object) -> int:
    try:
        number = _number(value)
    except InvalidParam:
        number = 0.0
    if not (number.is_integer() and 1 <= number <= MAX_CONCEPTS):
        raise InvalidParam(f"must be a whole number from 1 to {MAX_CONCEPTS}")
    return int(number)


def _thresholds(value: object, current: dict) -> dict[str, float]:
    """Merged key by key into `current`; a concept set to null loses its threshold, and
    null for the whole removes them all."""
    if value is None:
        return {}
    message = "must map concept IDs to numbers from 0 to 1 (null removes a threshold)"
    if not isinstance(value, dict):
        raise InvalidParam(message)
    merged = dict(current) if isinstance(current, dict) else {}
    for concept, threshold in value.items():
        if not is_valid_id(concept):
            raise InvalidParam(f"{message}: {concept!r} is not a concept ID")
        if threshold is None:
            merged.pop(concept, None)
            continue
        try:
            merged[concept] = _min_value(threshold)
        except InvalidParam:
            raise InvalidParam(f"{message}: {concept!r} is {threshold!r}") from None
    return merged


CHECKS: dict[str, Callable[[object], Any]] = {
    "dataset_id": _dataset_id,
    "dataset_version_id": _dataset_version_id,
    "concepts": _id_list,
    "concepts_mutually_exclusive": _boolean,
    "train_params.base_embed_model": _base_model,
    "train_params.enrich_dataset": _enrich,
    "train_params.C": _c,
    "train_params.class_weight": _class_weight,
    "train_params.head": _head,
    "inference_params.min_value": _min_value,
    "inference_params.max_concepts": _max_concepts,
    "inference_params.select_concepts": _id_list,
}


def merged_params(current: dict, patch: dict) -> dict:
    """`patch` merged into the complete `current` parameters, nested objects key by key;
    HttpError 400 ("Invalid params: ...") for an unknown key or a wrong value."""
    params = complete(current)
    template = default_params()
    for key, value in patch.items():
        if key not in template:
            raise _unknown(key, template)
        if key not in NESTED:
            params[key] = _checked(key, value)
            continue
        if not isinstance(value, dict):
            raise HttpError(400, f"Invalid params: {key} must be an object")
        known = {**template[key], **dict.fromkeys(OPTIONAL.get(key, ()))}
        for name, item in value.items():
            path = f"{key}.{name}"
            if name not in known:
                raise _unknown(path, known, prefix=f"{key}.")
            if name == "concept_thresholds":
                try:
                    params[key][name] = _thresholds(item, params[key].get(name, {}))
                except InvalidParam as exc:
                    raise HttpError(400, f"Invalid params: {path} {exc}") from None
            else:
                params[key][name] = _checked(path, item)
    return params


def _checked(path: str, value: object) -> Any:
    try:
        return CHECKS[path](value)
    except InvalidParam as exc:
        raise HttpError(400, f"Invalid params: {path} {exc}") from None


def _unknown(path: str, known: dict, prefix: str = "") -> HttpError:
    names = ", ".join(prefix + name for name in known)
    return HttpError(400, f"Invalid params: {path} is not a parameter; the parameters are {names}")


PARAMS_EXAMPLE = {
    "dataset_id": "emails",
    "dataset_version_id": "1",
    "concepts": ["spam", "ham"],
    "train_params": {"enrich_dataset": "Disabled"},
}


@router.get(
    "/apps/{app_id}/models/{model_id}/params", response=dict[str, Any], url_name="api-params"
)
def get_params(request: HttpRequest, app_id: str, model_id: str) -> dict:
    """The model's current parameters: the ones its next training will use."""
    return complete(get_app_model(request, app_id, model_id).params)


@router.patch("/apps/{app_id}/models/{model_id}/params", response=dict[str, Any])
def update_params(
    request: HttpRequest,
    app_id: str,
    model_id: str,
    body: dict[str, Any] = Body(..., examples=[PARAMS_EXAMPLE]),  # noqa: B008
) -> dict:
    """Change some parameters: the body's keys are merged into the current ones (nested
    objects key by key); an unknown key or a wrong value changes nothing."""
    model = get_app_model(request, app_id, model_id)
    with transaction.atomic():
        model = TrainableModel.objects.select_for_update().get(pk=model.pk)
        model.params = merged_params(model.params, body)
        model.save(update_fields=["params"])
    return model.params


# Training and versions


class TimesOut(Schema):
    created: datetime
    started: datetime | None
    finished: datetime | None


class TimingsOut(TimesOut):
    embed_seconds: float | None
    fit_seconds: float | None


class ModelVersionOut(Schema):
    id: str
    model_id: str
    status: StatusOut
    progress: float  # 0..1
    stage: str
    dataset_id: str
    dataset_version_id: str
    concepts: list[str]
    params: dict[str, Any]
    timings: TimingsOut
    error: str
    log: str = ""  # only with ?logs=true


def version_out(version: ModelVersion, model: TrainableModel, logs: bool = False) -> dict:
    params = version.params
    out = {
        "id": str(version.number),
        "model_id": model.slug,
        "status": status_of(version.status, ModelVersion.Status, TRAINING_STATUS),
        "progress": version.progress,
        "stage": version.stage,
        "dataset_id": params.get("dataset_id", ""),
        "dataset_version_id": str(params.get("dataset_version_id", "")),
        "concepts": list(version.concepts),
        "params": params,
        "timings": {
            "embed_seconds": version.embed_seconds,
            "fit_seconds": version.fit_seconds,
            "created": version.created,
            "started": version.started,
            "finished": version.finished,
        },
        "error": version.error,
    }
    if logs:
        out["log"] = version.log
    return out


def get_version(
    request: HttpRequest, app_id: str, model_id: str, version_id: str
) -> tuple[TrainableModel, ModelVersion]:
    """The user's model and its version numbered `version_id`, or 404."""
    model = get_app_model(request, app_id, model_id)
    number = as_number(version_id)
    if number is None:
        raise Http404
    return model, get_model_version(model, number)


@router.post(
    "/apps/{app_id}/models/{model_id}/versions",
    response={202: ModelVersionOut},
    exclude_unset=True,
    url_name="api-versions",
)
def train(request: HttpRequest, app_id: str, model_id: str) -> Status:
    """Train a new version with the model's current parameters; poll it until its status
    is MODEL-TRAINED (21100) or MODEL-TRAINING-FAILED (21106)."""
    model = get_app_model(request, app_id, model_id)
    try:
        version = training.start_training(model)
    except training.ParamsError as exc:
        raise HttpError(400, str(exc)) from exc
    return Status(202, version_out(version, model))


@router.get(
    "/apps/{app_id}/models/{model_id}/versions", response=list[ModelVersionOut], exclude_unset=True
)
def list_versions(
    request: HttpRequest, app_id: str, model_id: str, logs: bool = False
) -> list[dict]:
    """The model's versions, newest first; `logs=true` adds each one's training log."""
    model = get_app_model(request, app_id, model_id)
    versions = model.versions.defer("head") if logs else model.versions.defer("head", "log")
    return [version_out(v, model, logs) for v in versions]


@router.get(
    "/apps/{app_id}/models/{model_id}/versions/{version_id}",
    response=ModelVersionOut,
    exclude_unset=True,
    url_name="api-version",
)
def get_version_status(
    request: HttpRequest, app_id: str, model_id: str, version_id: str, logs: bool = False
) -> dict:
    """A version's training status, progress, timings and error; `logs=true` adds its
    training log."""
    model, version = get_version(request, app_id, model_id, version_id)
    return version_out(version, model, logs)
