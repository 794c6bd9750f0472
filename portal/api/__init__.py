"""The REST API under /api/v1/: one NinjaAPI, token or session authentication, JSON errors.

Every route module adds a `router` here. Errors are always ``{"error": "<readable
message>"}`` with the status that fits: 400 invalid, 401 no or revoked token, 404 not
found or not yours, 413 too large, 429 too many wrong tokens, 503 queue unavailable.
"""

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from portal.api.auth import SessionAuth, TokenAuth
from portal.queue import QueueUnavailable

api = NinjaAPI(
    title="Textcat Portal API",
    version="1",
    description=(
        "Build text classifiers by transfer learning: apps, datasets, inputs, concepts, "
        "dataset versions, models, training, predictions and evaluations. Authenticate "
        "with `Authorization: Token <key>` (your name at the top right → API tokens)."
    ),
    auth=[TokenAuth(), SessionAuth()],
    urls_namespace="api",
)


def error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return api.create_response(request, {"error": message}, status=status)


def readable(errors: list[dict]) -> str:
    """Pydantic's errors as one sentence: "texts: Input should be a valid list; ..."."""
    parts = []
    for e in errors:
        location = ".".join(str(part) for part in e.get("loc", ())[1:] if part != "body")
        message = str(e.get("msg", "invalid"))
        kind = e.get("type", "")
        if kind == "extra_forbidden":
            parts.append(f"unknown field: {location}")
        elif kind in ("model_attributes_type", "dict_type") and not location:
            parts.append("the body must be a JSON object")
        else:
            parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts) or "invalid request"


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error(request, readable(exc.errors), 400)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error(
        request, "authentication required: send 'Authorization: Token <key>' with a valid key", 401
    )


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    message = str(exc)
    if not message or "matches the given query" in message:  # Django's generic wording
        message = f"not found: {request.path} (it doesn't exist, or it isn't yours)"
    return error(request, message, 404)


@api.exception_handler(Throttled)
def on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    minutes = -(-(exc.wait or 60) // 60)
    response = error(
        request,
        f"too many requests with a wrong token from your address; try again in {minutes} minutes",
        429,
    )
    if exc.wait:
        response["Retry-After"] = str(exc.wait)
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    if message.startswith("Cannot parse request body"):  # django-ninja's wording
        message = "the body is not valid JSON"
    return error(request, message, exc.status_code)


@api.exception_handler(QueueUnavailable)
def on_queue_unavailable(request: HttpRequest, exc: QueueUnavailable) -> HttpResponse:
    return error(request, str(exc), 503)


def urls() -> tuple[list, str, str]:
    """The API's URL patterns; the API authenticates by itself, so the site's login
    requirement (for pages) doesn't apply to them."""
    from portal.api import apps, evaluations, inputs, models, predictions

    for module in (apps, inputs, models, predictions, evaluations):
        api.add_router("", module.router)
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback.login_required = False
    return patterns, app_name, namespace
