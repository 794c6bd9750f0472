"""Redis stopped: pages load, jobs say the queue is unavailable, predictions keep working.

Every test runs with the broker pointing at a port where nothing answers
(`dead_broker`). The objects the pages show are made directly, the way the worker
makes them, so that nothing here needs a queue.
"""

import json
import re
import time
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from portal import batch, evaluating, training, versions
from portal.models import (
    Annotation,
    ApiToken,
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
    default_params,
    text_hash,
)
from portal.queue import QueueUnavailable
from tests.conftest import HAM_TEXTS, SPAM_TEXTS

# Committed transactions: jobs are queued when the transaction that creates them commits.
pytestmark = pytest.mark.django_db(transaction=True)

PAGE_SECONDS = 2.0
HX = {"HX-Request": "true"}
APP = "/apps/spam-filter"
MODEL = f"{APP}/models/detector"
API_APP = "/api/v1/apps/spam-filter"
API_MODEL = f"{API_APP}/models/detector"
SPAMMY = "Congratulations! You won a free prize, call now to claim it"


@dataclass
class World:
    """Alice's app with one of everything, all finished."""

    app: App
    concept: Concept
    dataset: Dataset
    dataset_version: DatasetVersion
    item: Input
    model: TrainableModel
    model_version: ModelVersion
    evaluation: Evaluation
    import_job: ImportJob
    prediction_job: PredictionJob
    token: ApiToken
    key: str


@pytest.fixture
def world(alice, embedder) -> World:
    app = App.objects.create(owner=alice, slug="spam-filter")
    dataset = Dataset.objects.create(app=app, slug="emails")
    for slug, texts in (("spam", SPAM_TEXTS), ("ham", HAM_TEXTS)):
        concept = Concept.objects.create(app=app, slug=slug, name=slug.title())
        for text in texts:
            item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
            dataset.inputs.add(item)
            Annotation.objects.create(input=item, concept=concept, value=Annotation.POSITIVE)
    dataset_version = DatasetVersion.objects.create(dataset=dataset, number=1)
    versions.snapshot(dataset_version.pk)
    dataset_version.refresh_from_db()
    params = default_params()
    params.update(dataset_id="emails", dataset_version_id="1", concepts=["spam", "ham"])
    # A fixed C and no background texts: seconds less per test, the same pages.
    params["train_params"].update(enrich_dataset="Disabled", C=1.0)
    model = TrainableModel.objects.create(app=app, slug="detector", params=params)
    model_version = ModelVersion.objects.create(
        model=model,
        number=1,
        params=params,
        dataset_version=dataset_version,
        concepts=params["concepts"],
    )
    training.train(model_version.pk)
    model_version.refresh_from_db()
    assert model_version.status == ModelVersion.Status.TRAINED, model_version.error
    evaluation = Evaluation.objects.create(
        model_version=model_version, dataset_version=dataset_version, user=alice, kfold=True
    )
    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.EVALUATED, evaluation.error
    import_job = ImportJob.objects.create(
        app=app, user=alice, filename="old.csv", status=ImportJob.Status.DONE, created_count=3
    )
    prediction_job = PredictionJob.objects.create(
        model_version=model_version, user=alice, filename="texts.csv", data=b"text\nhello\n"
    )
    batch.run(prediction_job.pk)
    prediction_job.refresh_from_db()
    assert prediction_job.status == PredictionJob.Status.DONE, prediction_job.errors
    token, key = ApiToken.issue(alice, "laptop")
    return World(
        app=app,
        concept=concept,
        dataset=dataset,
        dataset_version=dataset_version,
        item=item,
        model=model,
        model_version=model_version,
        evaluation=evaluation,
        import_job=import_job,
        prediction_job=prediction_job,
        token=token,
        key=key,
    )


@pytest.fixture
def api(world) -> Client:
    """A client of the API with Alice's token."""
    return Client(headers={"Authorization": f"Token {world.key}"})


def assert_nothing_waits() -> None:
    """No job row waits for a task: every one is finished, failed with a reason, or absent."""
    waiting = {
        "model versions": ModelVersion.objects.filter(status=ModelVersion.Status.QUEUED),
        "dataset versions": DatasetVersion.objects.filter(status=DatasetVersion.Status.PENDING),
        "imports": ImportJob.objects.filter(status=ImportJob.Status.PENDING),
        "batch predictions": PredictionJob.objects.filter(status=PredictionJob.Status.PENDING),
        "evaluations": Evaluation.objects.filter(status=Evaluation.Status.QUEUED),
    }
    assert {name: rows.count() for name, rows in waiting.items() if rows.exists()} == {}
    for rows in (
        ModelVersion.objects.filter(status=ModelVersion.Status.FAILED, error=""),
        DatasetVersion.objects.filter(status=DatasetVersion.Status.FAILURE, error=""),
        ImportJob.objects.filter(status=ImportJob.Status.FAILED, errors=[]),
        PredictionJob.objects.filter(status=PredictionJob.Status.FAILED, errors=[]),
        Evaluation.objects.filter(status=Evaluation.Status.FAILED, error=""),
    ):
        assert not rows.exists(), f"failed without a reason: {list(rows)}"


def api_error(response, status: int) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


def page_text(response) -> str:
    return " ".join(response.content.decode().split())


def csv_file(rows: int) -> SimpleUploadedFile:
    content = "text,label\n" + "".join(f"message {i},spam\n" for i in range(rows))
    return SimpleUploadedFile("new.csv", content.encode(), content_type="text/csv")


# Every page


def _routes(patterns: list, prefix: str = "", namespace: str = "") -> list[tuple[str, str]]:
    """(route, name) of every URL pattern, nested includes spelled out."""
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found += _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            found.append((prefix + str(pattern.pattern), namespace + (pattern.name or "")))
    return found


# Not pages of the portal: Django's admin (staff only, its own URL scheme).
SKIPPED = ("admin/",)
# Routes that answer a plain GET with something other than 200, and what.
NOT_PAGES = {
    "portal:app-delete": 405,
    "portal:concept-row": 302,  # a fragment: over htmx 200, plainly the concept list
    "portal:dataset-delete": 405,
    "portal:dataset-version-new": 405,
    "portal:inputs-bulk": 405,
    "portal:input-label": 405,
    "portal:inputs-upload-concept": 405,
    "portal:model-delete": 405,
    "portal:model-evaluate": 405,
    "portal:evaluation-thresholds": 405,
    "portal:evaluation-delete": 405,
    "portal:label-next-accept": 405,
    "portal:label-next-skip": 405,
    "portal:label-next-undo": 405,
    "portal:label-next-retrain": 405,
    "portal:input-similar-label": 405,
    "portal:suspicious-fix": 405,
    "portal:model-try-add": 405,
    "api:api-predict": 405,
    "api:api-feedback": 405,
    "api:api-compare": 405,
    "api:upload_inputs": 405,
    "api:update_labels": 405,  # PATCH and DELETE only
    "api:api-root": 404,  # the API has no page of its own; its docs are at /api/v1/docs
    "logout": 405,
    "healthz": 503,  # the broker is down: that is what it reports
}
FRAGMENTS = {"portal:concept-row"}
QUERIES = {
    "portal:evaluations-compare": "?ids={evaluation}",
    "portal:evaluation-selection": "?actual=spam&predicted=spam",
}


def _path(route: str, name: str, world: World) -> str:
    values = {
        "app_id": world.app.slug,
        "concept_id": world.concept.slug,
        "dataset_id": world.dataset.slug,
        "model_id": world.model.slug,
        "number": "1",
        "version_id": "1",
        "fmt": "csv",
        "input_pk": world.item.pk,
        "input_id": world.item.pk,
        "pk": world.evaluation.pk,
        "eval_pk": world.evaluation.pk,
        "token_id": world.token.pk,
        "job_id": world.import_job.pk,
        "job_pk": world.prediction_job.pk if "batch" in name else world.import_job.pk,
        "uidb64": "MQ",
        "token": "set-password",
    }
    path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m[1]]), route)
    return path + QUERIES.get(name, "").format(evaluation=world.evaluation.pk)


def test_every_page_loads_quickly_with_redis_down(alice_client, world, dead_broker):
    """Each GET route of the site, plain and over htmx, with real objects of its user."""
    token = {"Authorization": f"Token {world.key}"}
    seen, timings, unexpected = set(), [], []
    for route, name in _routes(get_resolver().url_patterns):
        if route.startswith(SKIPPED) or route in seen:
            continue
        seen.add(route)
        path = _path(route, name, world)
        variants = [token] if route.startswith("api/") else [{}, HX]
        for headers in variants:
            started = time.monotonic()
            response = alice_client.get(path, headers=headers)
            htmx = headers == HX
            timings.append((path, htmx, round(time.monotonic() - started, 2)))
            expected = 200 if htmx and name in FRAGMENTS else NOT_PAGES.get(name, 200)
            if response.status_code != expected:
                unexpected.append((path, htmx, response.status_code, expected))
    assert unexpected == [], "\n".join(map(str, unexpected))
    assert [entry for entry in timings if entry[2] >= PAGE_SECONDS] == []
    assert len(seen) > 60  # the sweep really walked the site
    broker = alice_client.get("/healthz").json()["broker"]
    assert broker["ok"] is False and broker["error"]


# Jobs: each says the queue is unavailable and leaves nothing waiting


def test_train_model_page_says_the_queue_is_unavailable(alice_client, world, dead_broker):
    form = {
        "dataset": "emails",
        "dataset_version": "1",
        "base_embed_model": "all-MiniLM-L6-v2",
        "concepts": ["ham", "spam"],
        "enrich_dataset": "Disabled",
        "min_value": "0",
        "max_concepts": "20",
        "C": "auto",
        "class_weight": "none",
    }
    response = alice_client.post(f"{MODEL}/setup/", form, follow=True)
    assert response.status_code == 200
    page = page_text(response)
    assert QueueUnavailable.message in page
    version = world.model.versions.get(number=2)
    assert version.status == ModelVersion.Status.FAILED
    assert version.error == training.QUEUE_UNAVAILABLE
    assert training.QUEUE_UNAVAILABLE in page
    assert 'hx-trigger="every 1s"' not in page  # nothing left to follow
    assert_nothing_waits()


def test_train_api_answers_503(api, world, dead_broker):
    response = api.post(f"{API_MODEL}/versions")
    assert api_error(response, 503) == QueueUnavailable.message
    assert world.model.versions.get(number=2).error == training.QUEUE_UNAVAILABLE
    assert_nothing_waits()


@pytest.mark.parametrize("htmx", [False, True])
def test_text_upload_page_says_the_queue_is_unavailable(alice_client, world, dead_broker, htmx):
    before = Input.objects.count()
    form = {"mode": "text", "text": "one more text\nand another", "datasets": ["emails"]}
    response = alice_client.post(f"{APP}/inputs/upload/", form, headers=HX if htmx else {})
    assert response.status_code == 200
    assert QueueUnavailable.message in page_text(response)
    assert (b"<html" in response.content) is not htmx
    assert Input.objects.count() == before
    assert_nothing_waits()


@pytest.mark.parametrize("rows", [3, 30])
def test_csv_upload_page_says_the_queue_is_unavailable(
    alice_client, world, settings, dead_broker, rows
):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 10  # 30 rows go to a background job
    before = Input.objects.count()
    form = {"mode": "csv", "file": csv_file(rows), "datasets": ["emails"]}
    response = alice_client.post(f"{APP}/inputs/upload/", form)
    assert response.status_code == 200
    assert QueueUnavailable.message in page_text(response)
    assert Input.objects.count() == before
    assert_nothing_waits()


def test_json_upload_api_answers_503(api, world, dead_broker):
    before = Input.objects.count()
    body = {"inputs": [{"text": "one more text", "concepts": ["spam"]}]}
    response = api.post(
        f"{API_APP}/datasets/emails/inputs", json.dumps(body), content_type="application/json"
    )
    assert api_error(response, 503) == QueueUnavailable.message
    assert Input.objects.count() == before
    assert_nothing_waits()


@pytest.mark.parametrize("rows", [3, 30])
def test_csv_upload_api_answers_503(api, world, settings, dead_broker, rows):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 10
    before = Input.objects.count()
    response = api.post(f"{API_APP}/datasets/emails/inputs", {"file": csv_file(rows)})
    assert api_error(response, 503) == QueueUnavailable.message
    assert Input.objects.count() == before
    assert_nothing_waits()


def test_new_dataset_version_says_the_queue_is_unavailable(alice_client, api, world, dead_broker):
    response = alice_client.post(f"{APP}/datasets/emails/versions/new/", follow=True)
    assert QueueUnavailable.message in page_text(response)
    response = api.post(f"{API_APP}/datasets/emails/versions")
    assert api_error(response, 503) == QueueUnavailable.message
    assert world.dataset.versions.filter(status=DatasetVersion.Status.FAILURE).count() == 2
    assert_nothing_waits()


def test_evaluate_says_the_queue_is_unavailable(alice_client, api, world, dead_broker):
    form = {"dataset_version": world.dataset_version.pk}
    response = alice_client.post(f"{MODEL}/versions/1/evaluate/", form, follow=True)
    assert QueueUnavailable.message in page_text(response)
    response = api.post(
        f"{API_MODEL}/versions/1/evaluations",
        json.dumps({"dataset_id": "emails"}),
        content_type="application/json",
    )
    assert api_error(response, 503) == QueueUnavailable.message
    failed = Evaluation.objects.filter(status=Evaluation.Status.FAILED)
    assert set(failed.values_list("error", flat=True)) == {evaluating.QUEUE_UNAVAILABLE}
    assert failed.count() == 2
    assert_nothing_waits()


def test_batch_prediction_says_the_queue_is_unavailable(alice_client, world, dead_broker):
    upload = SimpleUploadedFile("more.csv", b"text\nwin a prize\n", content_type="text/csv")
    form = {"file": upload, "version": "1"}
    response = alice_client.post(f"{MODEL}/batch/", form, follow=True)
    assert QueueUnavailable.message in page_text(response)
    job = PredictionJob.objects.latest("pk")
    assert job.status == PredictionJob.Status.FAILED
    assert job.errors == ["the job queue was unavailable; try again"]
    assert_nothing_waits()


# Predictions need no queue


def test_try_your_own_text_works_with_redis_down(alice_client, world, dead_broker):
    response = alice_client.post(f"{MODEL}/try/", {"text": SPAMMY}, headers=HX)
    assert response.status_code == 200
    names = re.findall(r'<span class="concept-name">(\w+)</span>', response.content.decode())
    assert names == ["Spam", "Ham"]
    assert b"errorlist" not in response.content


def test_the_predict_api_works_with_redis_down(api, world, dead_broker):
    body = {"texts": [SPAMMY, HAM_TEXTS[0]]}
    response = api.post(f"{API_MODEL}/predict", json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    outputs = response.json()["outputs"]
    top = [output["concepts"][0]["id"] for output in outputs]
    assert top == ["spam", "ham"]
