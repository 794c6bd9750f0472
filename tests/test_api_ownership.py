"""Every API operation that names an object answers another user's token with 404.

The operations come from the API's own schema, so a new route is tested here as soon as
it exists; it fails until its path parameters are known to `alice_ids` and, if it takes
a body, `BODIES` holds a valid one (else validation would answer before ownership).
"""

import json
import re

import pytest

import portal.urls  # noqa: F401  (registers the API's routes)
from portal import evaluating
from portal.api import api
from portal.models import ApiToken, App, Evaluation, ImportJob, Input, TrainableModel

PREFIX = "/api/v1"

BODIES = {
    ("post", "/apps/{app_id}/concepts"): {"id": "new-concept"},
    ("post", "/apps/{app_id}/datasets"): {"id": "new-dataset"},
    ("post", "/apps/{app_id}/datasets/{dataset_id}/inputs"): {
        "inputs": [{"text": "a new text", "concepts": ["spam"]}]
    },
    ("patch", "/apps/{app_id}/inputs/{input_id}"): {"concepts": ["ham"]},
    ("post", "/apps/{app_id}/models"): {"id": "new-model", "model_type_id": "embedding-classifier"},
    ("patch", "/apps/{app_id}/models/{model_id}/params"): {"concepts": ["spam"]},
    ("post", "/apps/{app_id}/models/{model_id}/predict"): {"texts": ["hello"]},
    ("post", "/apps/{app_id}/models/{model_id}/feedback"): {
        "text": "a corrected text",
        "concepts": ["spam"],
    },
    ("post", "/apps/{app_id}/models/{model_id}/versions/{version_id}/evaluations"): {
        "dataset_id": "emails"
    },
    ("post", "/apps/{app_id}/evaluations/compare"): {"evaluations": ["{eval_pk}", "{eval_pk}"]},
}


def operations() -> list[tuple[str, str, bool]]:
    """(method, path without the prefix, takes a body) for every operation of the API."""
    schema = api.get_openapi_schema(path_prefix="")
    return [
        (method, path, "requestBody" in operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


NAMED = [op for op in operations() if "{" in op[1]]


@pytest.fixture
def alice_ids(trained_model, alice) -> dict[str, str]:
    app = trained_model.app
    version = trained_model.versions.get()
    evaluation = evaluating.start_evaluation(version, version.dataset_version, alice)
    job = ImportJob.objects.create(app=app, user=alice, filename="a.csv", data=b"text\nhi\n")
    return {
        "app_id": app.slug,
        "dataset_id": "emails",
        "model_id": trained_model.slug,
        "version_id": "1",
        "input_id": str(Input.objects.filter(app=app).first().pk),
        "job_id": str(job.pk),
        "eval_pk": str(evaluation.pk),
    }


def fill(value: object, ids: dict[str, str]) -> object:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "has_body"), NAMED, ids=[f"{m} {p}" for m, p, _ in NAMED]
)
def test_another_users_token_gets_404(client, alice_ids, bob, method, path, has_body):
    unknown = set(re.findall(r"{(\w+)}", path)) - set(alice_ids)
    assert not unknown, f"{path}: add {unknown} to alice_ids so its ownership is tested"
    assert not has_body or (method, path) in BODIES, f"add a valid body for {method} {path}"
    if set(re.findall(r"{(\w+)}", path)) != {"app_id"}:
        # bob has an app of the same name: what it holds is looked up in his app only
        App.objects.create(owner=bob, slug=alice_ids["app_id"])
    _, key = ApiToken.issue(bob, "bob")
    before = (App.objects.count(), Input.objects.count(), Evaluation.objects.count())
    models = TrainableModel.objects.count()

    response = client.generic(
        method.upper(),
        PREFIX + path.format(**alice_ids),
        json.dumps(fill(BODIES.get((method, path), {}), alice_ids)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )

    assert response.status_code == 404, response.content
    assert set(response.json()) == {"error"}
    assert (App.objects.count(), Input.objects.count(), Evaluation.objects.count()) == before
    assert TrainableModel.objects.count() == models
