import json
import time
from collections.abc import Callable

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from portal import importing, versions
from portal.models import (
    Annotation,
    ApiToken,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    ImportJob,
    Input,
    text_hash,
)
from portal.queue import QueueUnavailable

pytestmark = pytest.mark.django_db

BASE = "/api/v1"
POS, NEG = Annotation.POSITIVE, Annotation.NEGATIVE
UPLOAD = "/apps/spam-filter/datasets/emails/inputs"


class Api:
    """Django's test client, sending a user's API token with every request."""

    def __init__(self, client: Client, key: str) -> None:
        self.client = client
        self.auth = {"HTTP_AUTHORIZATION": f"Token {key}"}

    def get(self, path: str, **params: object) -> HttpResponse:
        return self.client.get(BASE + path, params, **self.auth)

    def post(self, path: str, body: object = None) -> HttpResponse:
        data = "" if body is None else json.dumps(body)
        return self.client.post(BASE + path, data, content_type="application/json", **self.auth)

    def patch(self, path: str, body: object) -> HttpResponse:
        data = json.dumps(body)
        return self.client.patch(BASE + path, data, content_type="application/json", **self.auth)

    def delete(self, path: str) -> HttpResponse:
        return self.client.delete(BASE + path, **self.auth)

    def upload(self, path: str, content: str, name: str = "inputs.csv") -> HttpResponse:
        csv = SimpleUploadedFile(name, content.encode(), content_type="text/csv")
        return self.client.post(BASE + path, {"file": csv}, **self.auth)

    def call(self, method: str, path: str, body: object = None) -> HttpResponse:
        if method in ("post", "patch", "upload"):
            return getattr(self, method)(path, body)
        return getattr(self, method)(path)


def token_for(user) -> str:
    return ApiToken.issue(user, "t")[1]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def error(response: HttpResponse, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]


@pytest.fixture
def api(client, alice) -> Api:
    return Api(client, token_for(alice))


@pytest.fixture
def bob_api(client, bob) -> Api:
    return Api(client, token_for(bob))


@pytest.fixture
def app(alice) -> App:
    return App.objects.create(owner=alice, slug="spam-filter", description="SMS spam")


@pytest.fixture
def dataset(app) -> Dataset:
    return Dataset.objects.create(app=app, slug="emails")


@pytest.fixture
def spam(app) -> Concept:
    return Concept.objects.create(app=app, slug="spam", name="Spam")


def add_input(app: App, text: str, *, dataset=None, labels=(), external_id="") -> Input:
    item = Input.objects.create(
        app=app, text=text, text_hash=text_hash(text), external_id=external_id
    )
    if dataset is not None:
        dataset.inputs.add(item)
    for concept, value in labels:
        Annotation.objects.create(input=item, concept=concept, value=value)
    return item


def labels_of(item: Input) -> set[tuple[str, int]]:
    return set(item.annotations.values_list("concept__slug", "value"))


# Authentication


@pytest.mark.parametrize(
    "header",
    [None, "", "Token", "Token ", "Token not-a-key", "Bearer {key}", "{key}", "Token {key}x"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/apps"), ("post", UPLOAD), ("get", "/apps/spam-filter/inputs")],
)
def test_it_needs_a_valid_token(client, alice, dataset, header, method, path):
    key = token_for(alice)
    headers = {} if header is None else {"HTTP_AUTHORIZATION": header.format(key=key)}
    if method == "get":
        response = client.get(BASE + path, **headers)
    else:
        body = json.dumps({"inputs": [{"text": "hello"}]})
        response = client.post(BASE + path, body, "application/json", **headers)
    assert "authentication required" in error(response, 401)
    assert not Input.objects.exists()


def test_a_revoked_token_is_refused(api, alice, app):
    assert api.get("/apps").status_code == 200
    ApiToken.objects.filter(user=alice).update(revoked=timezone.now())
    assert "authentication required" in error(api.get("/apps"), 401)


def test_a_signed_in_session_works_too(alice_client, app):
    response = alice_client.get(f"{BASE}/apps")
    assert [a["id"] for a in response.json()] == ["spam-filter"]


# Apps


def test_apps_are_created_listed_shown_and_deleted(api, alice):
    response = api.post("/apps", {"id": "reviews", "description": "Product reviews"})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"] == "reviews"
    assert created["description"] == "Product reviews"
    assert created["input_count"] == created["concept_count"] == created["dataset_count"] == 0
    assert "created_at" in created
    assert App.objects.get(owner=alice, slug="reviews")
    api.post("/apps", {"id": "another"})
    assert [a["id"] for a in api.get("/apps").json()] == ["another", "reviews"]
    assert api.get("/apps/reviews").json() == created
    assert api.delete("/apps/reviews").status_code == 204
    assert not App.objects.filter(slug="reviews").exists()
    assert "isn't yours" in error(api.get("/apps/reviews"), 404)


def test_an_app_counts_its_contents(api, app, dataset, spam):
    add_input(app, "win cash", dataset=dataset, labels=[(spam, POS)])
    add_input(app, "hi mom")
    body = api.get("/apps/spam-filter").json()
    assert (body["input_count"], body["labeled_count"]) == (2, 1)
    assert (body["concept_count"], body["dataset_count"]) == (1, 1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "not ok"}, "id: Letters, digits"),
        ({"id": "new"}, "is reserved"),
        ({"id": "SPAM-filter"}, "id: You already have an app called"),
        ({"id": ""}, "id: This field is required"),
        ({"description": "x"}, "id: Field required"),
        ({"id": "fine", "input_type": "image"}, "unknown field: input_type"),
        ({"id": "fine", "description": "x" * 501}, "description: Ensure this value"),
        ({"id": 7}, "id: Input should be a valid string"),
        ([], "the body must be a JSON object"),
    ],
)
def test_app_creation_is_validated(api, app, body, message):
    assert message in error(api.post("/apps", body), 400)
    assert App.objects.count() == 1


def test_app_creation_refuses_a_body_that_is_not_json(api, client):
    response = client.post(f"{BASE}/apps", "{", content_type="application/json", **api.auth)
    assert "not valid JSON" in error(response, 400)


# Concepts


def test_concepts_are_created_and_listed_with_counts(api, app, spam):
    response = api.post("/apps/spam-filter/concepts", {"id": "ham"})
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "ham"  # the name defaults to the ID
    named = api.post("/apps/spam-filter/concepts", {"id": "promo", "name": "Promotions"})
    assert named.json()["name"] == "Promotions"
    add_input(app, "win cash", labels=[(spam, POS)])
    add_input(app, "hi mom", labels=[(spam, NEG)])
    add_input(app, "cheap pills", labels=[(spam, POS)])
    listed = {c["id"]: c for c in api.get("/apps/spam-filter/concepts").json()}
    assert list(listed) == ["ham", "promo", "spam"]
    assert (listed["spam"]["positive_count"], listed["spam"]["negative_count"]) == (2, 1)
    assert listed["spam"]["name"] == "Spam"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "bad concept!"}, "id: Letters, digits"),
        ({"id": "SPAM"}, "id: This app already has a concept called"),
        ({"name": "Ham"}, "id: Field required"),
        ({"id": "ham", "color": "red"}, "unknown field: color"),
    ],
)
def test_concept_creation_is_validated(api, spam, body, message):
    assert message in error(api.post("/apps/spam-filter/concepts", body), 400)
    assert Concept.objects.count() == 1


# Datasets


def test_datasets_are_created_listed_and_shown(api, app, spam):
    response = api.post("/apps/spam-filter/datasets", {"id": "emails", "description": "Inbox"})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"] == "emails"
    assert created["description"] == "Inbox"
    assert (created["input_count"], created["version_count"], created["versions"]) == (0, 0, [])
    dataset = Dataset.objects.get(app=app, slug="emails")
    add_input(app, "win cash", dataset=dataset, labels=[(spam, POS)])
    add_input(app, "hi mom", dataset=dataset)
    add_input(app, "not in it")
    api.post("/apps/spam-filter/datasets", {"id": "archive"})
    listed = api.get("/apps/spam-filter/datasets").json()
    assert [d["id"] for d in listed] == ["archive", "emails"]
    assert (listed[1]["input_count"], listed[1]["labeled_count"]) == (2, 1)
    assert "versions" not in listed[1]
    version = DatasetVersion.objects.create(dataset=dataset, number=1)
    versions.snapshot(version.pk)
    detail = api.get("/apps/spam-filter/datasets/emails").json()
    assert detail["input_count"] == 2
    assert detail["version_count"] == 1
    assert detail["versions"][0]["id"] == 1
    assert detail["versions"][0]["status"] == "READY"
    assert "not found" in error(api.get("/apps/spam-filter/datasets/nope"), 404)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "not ok"}, "id: Letters, digits"),
        ({"id": "EMAILS"}, "id: This app already has a dataset called"),
        ({"id": "new"}, "is reserved"),
        ({"description": "x"}, "id: Field required"),
        ({"id": "x", "inputs": []}, "unknown field: inputs"),
    ],
)
def test_dataset_creation_is_validated(api, dataset, body, message):
    assert message in error(api.post("/apps/spam-filter/datasets", body), 400)
    assert Dataset.objects.count() == 1


# Uploads: JSON


def test_it_uploads_json_inputs(api, app, dataset, spam):
    inputs = [
        {"text": "  win cash now ", "concepts": ["spam", "promo"], "id": "a1"},
        {"text": "hi mom", "negative_concepts": ["spam"], "metadata": {"src": "sms"}},
        {"text": "no labels"},
    ]
    response = api.post(UPLOAD, {"inputs": inputs})
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 3, "skipped": 0}
    assert set(dataset.inputs.values_list("text", flat=True)) == {
        "win cash now",
        "hi mom",
        "no labels",
    }
    win = Input.objects.get(external_id="a1")
    assert labels_of(win) == {("spam", POS), ("promo", POS)}
    assert win.annotations.first().author.username == "alice"
    assert labels_of(Input.objects.get(text="hi mom")) == {("spam", NEG)}
    assert Input.objects.get(text="hi mom").metadata == {"src": "sms"}
    # Concepts the inputs name are created, as the browser's upload does.
    assert Concept.objects.get(app=app, slug="promo").name == "promo"


def test_it_skips_duplicates(api, app, dataset):
    api.post(UPLOAD, {"inputs": [{"text": "hello", "id": "h1"}]})
    again = api.post(UPLOAD, {"inputs": [{"text": "hello"}, {"text": "other", "id": "h1"}]})
    assert again.json() == {"created": 0, "skipped": 2}
    assert Input.objects.count() == 1


def test_a_json_upload_schedules_the_embedding(
    api, app, dataset, broker, django_capture_on_commit_callbacks
):
    queue = redis.Redis.from_url(broker)
    queue.flushdb()
    with django_capture_on_commit_callbacks(execute=True):
        api.post(UPLOAD, {"inputs": [{"text": "one"}, {"text": "two"}]})
    tasks = [json.loads(message)["headers"]["task"] for message in queue.lrange("bulk", 0, -1)]
    assert "portal.tasks.embed_chunk" in tasks


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": [{"text": "fine"}, {"text": "   "}]}, "inputs.1.text: the text is empty"),
        ({"inputs": [{"text": "x", "concepts": ["bad one"]}]}, "'bad one' is not a valid concept"),
        (
            {"inputs": [{"text": "x", "concepts": ["spam"], "negative_concepts": ["spam"]}]},
            "inputs.0: concept 'spam' is both positive and negative",
        ),
        (
            {"inputs": [{"text": "a", "id": "k"}, {"text": "b", "id": "k"}]},
            "input ID 'k' appears twice",
        ),
        ({"inputs": [{"text": "a", "label": "spam"}]}, "unknown field: inputs.0.label"),
        ({"inputs": [{"text": "a", "metadata": "web"}]}, "inputs.0.metadata:"),
        ({"inputs": [{"text": "a", "id": "x" * 201}]}, "inputs.0.id: String should have at most"),
        ({"inputs": [{"text": "nul \x00"}]}, "NUL character"),
        ({"inputs": [{"concepts": ["spam"]}]}, "inputs.0.text: Field required"),
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        ({"texts": ["a"]}, "unknown field: texts"),
        ([{"text": "a"}], "the body must be a JSON object"),
    ],
)
def test_it_rejects_bad_json_inputs_and_saves_nothing(api, dataset, body, message):
    assert message in error(api.post(UPLOAD, body), 400)
    assert not Input.objects.exists()
    assert not Concept.objects.exists()


@pytest.mark.parametrize("payload", ["{", '{"inputs": [{"text": "a", "metadata": {"x": NaN}}]}'])
def test_it_rejects_a_body_that_is_not_json(api, client, dataset, payload):
    response = client.post(BASE + UPLOAD, payload, content_type="application/json", **api.auth)
    assert "not valid JSON" in error(response, 400)
    assert not Input.objects.exists()


def test_it_refuses_an_overlong_text(api, dataset, settings):
    settings.PORTAL_MAX_TEXT_LENGTH = 10
    response = api.post(UPLOAD, {"inputs": [{"text": "x" * 11}]})
    assert "11 characters long; the limit is 10" in error(response, 400)


def test_it_refuses_too_many_json_inputs(api, dataset, settings):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 2
    response = api.post(UPLOAD, {"inputs": [{"text": t} for t in "abc"]})
    assert "at most 2 inputs per JSON request" in error(response, 413)
    assert not Input.objects.exists()


def test_it_refuses_a_json_body_over_djangos_limit(api, dataset, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api.post(UPLOAD, {"inputs": [{"text": "x" * 200}]})
    assert "larger than" in error(response, 413)


# Uploads: CSV


def test_it_imports_a_small_csv(api, app, dataset, spam):
    content = 'input,concepts,inputid,metadata\nwin cash,"spam,promo",a1,"{""src"": ""sms""}"\n'
    content += "hi mom,ham,a2,\n"
    response = api.upload(UPLOAD, content)
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 2, "skipped": 0}
    assert dataset.inputs.count() == 2
    assert labels_of(Input.objects.get(external_id="a1")) == {("spam", POS), ("promo", POS)}
    assert Input.objects.get(external_id="a1").metadata == {"src": "sms"}
    assert set(Concept.objects.values_list("slug", flat=True)) == {"spam", "promo", "ham"}
    again = api.upload(UPLOAD, content + "new one,,,\n")
    assert again.json() == {"created": 1, "skipped": 2}
    assert ImportJob.objects.filter(status=ImportJob.Status.DONE).count() == 2


def test_it_imports_the_portal_csv_format(api, dataset):
    content = (
        "input.id,input.data.text.raw,input.data.concepts[0].id,input.data.concepts[0].value\n"
        "x1,cheap pills,spam,1\nx2,lunch at noon?,spam,0\n"
    )
    assert api.upload(UPLOAD, content).status_code == 201
    assert labels_of(Input.objects.get(external_id="x2")) == {("spam", NEG)}


def test_it_rejects_a_bad_csv_and_saves_nothing(api, dataset):
    content = "input,concepts\nfine text,spam\n,spam\nalso fine,bad concept!\n"
    message = error(api.upload(UPLOAD, content), 400)
    assert message.startswith("nothing was imported")
    assert "row 3: text is empty" in message
    assert "row 4: concept ID 'bad concept!' is not valid" in message
    assert not Input.objects.exists()
    assert not Concept.objects.exists()


def test_it_rejects_a_csv_without_a_text_column(api, dataset):
    assert "no text column" in error(api.upload(UPLOAD, "name\nhello\n"), 400)


def test_it_refuses_a_csv_over_the_size_cap(api, dataset, settings):
    settings.PORTAL_MAX_UPLOAD_BYTES = 10
    response = api.upload(UPLOAD, "text\n" + "x" * 20)
    assert "larger than the" in error(response, 413)
    assert not ImportJob.objects.exists()


def test_a_multipart_upload_needs_the_file_field(api, client, dataset):
    response = client.post(BASE + UPLOAD, {"other": "x"}, **api.auth)
    assert "multipart field 'file'" in error(response, 400)


@pytest.mark.django_db(transaction=True)
def test_a_big_csv_imports_in_the_background(api, app, dataset, settings, celery_worker):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 5
    rows = [f"message {i},{'spam' if i % 2 else 'ham'}\n" for i in range(40)]
    response = api.upload(UPLOAD, "text,label\n" + "".join(rows), name="big.csv")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] in ("PENDING", "RUNNING", "DONE")
    assert job["filename"] == "big.csv"
    assert job["url"] == f"{BASE}/apps/spam-filter/inputs/jobs/{job['id']}"
    url = job["url"].removeprefix(BASE)
    assert wait_for(lambda: api.get(url).json()["status"] in ("DONE", "FAILED"))
    done = api.get(url).json()
    assert done["status"] == "DONE", done["errors"]
    assert (done["created"], done["skipped"], done["rows_done"]) == (40, 0, 40)
    assert done["finished_at"] is not None
    assert dataset.inputs.count() == 40
    assert Annotation.objects.filter(concept__slug="spam").count() == 20


@pytest.mark.django_db(transaction=True)
def test_a_big_bad_csv_fails_in_the_background(api, dataset, settings, celery_worker):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 2
    response = api.upload(UPLOAD, "text,label\nfine,spam\n,spam\nok,bad label!\n")
    url = response.json()["url"].removeprefix(BASE)
    assert wait_for(lambda: api.get(url).json()["status"] in ("DONE", "FAILED"))
    failed = api.get(url).json()
    assert failed["status"] == "FAILED"
    assert failed["errors"][0] == "row 3: text is empty"
    assert failed["created"] == 0
    assert not Input.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_big_csv_with_the_queue_down_answers_503(api, dataset, settings, dead_broker):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 1
    response = api.upload(UPLOAD, "text\none\ntwo\nthree\n")
    assert error(response, 503) == QueueUnavailable.message
    assert not ImportJob.objects.exists()
    assert not Input.objects.exists()


def test_the_import_job_is_shown(api, app):
    job = ImportJob.objects.create(app=app, filename="x.csv", data=b"text\na\n")
    body = api.get(f"/apps/spam-filter/inputs/jobs/{job.pk}").json()
    assert (body["id"], body["status"], body["errors"]) == (job.pk, "PENDING", [])
    assert "not found" in error(api.get(f"/apps/spam-filter/inputs/jobs/{job.pk + 1}"), 404)
    assert "job_id" in error(api.get("/apps/spam-filter/inputs/jobs/x"), 400)


# Listing inputs


@pytest.fixture
def explorer(app, dataset, spam) -> dict[str, Input]:
    other = Dataset.objects.create(app=app, slug="other")
    return {
        "win": add_input(app, "win cash", dataset=dataset, labels=[(spam, POS)], external_id="w"),
        "mom": add_input(app, "hi mom", dataset=dataset, labels=[(spam, NEG)]),
        "cash": add_input(app, "cash back offer", dataset=other),
    }


def ids(response: HttpResponse) -> set[int]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["inputs"]}


def test_it_lists_inputs_newest_first(api, app, explorer):
    Input.objects.filter(pk=explorer["win"].pk).update(metadata={"src": "sms"})
    body = api.get("/apps/spam-filter/inputs").json()
    assert (body["count"], body["page"], body["pages"], body["next_page"]) == (3, 1, 1, None)
    assert [i["text"] for i in body["inputs"]] == ["cash back offer", "hi mom", "win cash"]
    win = body["inputs"][2]
    assert win == {
        "id": explorer["win"].pk,
        "external_id": "w",
        "text": "win cash",
        "concepts": ["spam"],
        "negative_concepts": [],
        "datasets": ["emails"],
        "metadata": {"src": "sms"},
        "revision": 0,
        "created_at": win["created_at"],
    }
    assert body["inputs"][1]["negative_concepts"] == ["spam"]


def test_it_filters_inputs(api, explorer):
    win, mom, cash = explorer["win"].pk, explorer["mom"].pk, explorer["cash"].pk
    url = "/apps/spam-filter/inputs"
    assert ids(api.get(url, dataset_id="emails")) == {win, mom}
    assert ids(api.get(url, concept="spam")) == {win, mom}
    assert ids(api.get(url, concept="spam", state="negative")) == {mom}
    assert ids(api.get(url, state="unlabeled")) == {cash}
    assert ids(api.get(url, q="CASH")) == {win, cash}
    assert ids(api.get(url, q="cash", dataset_id="other")) == {cash}


def test_it_pages_inputs(api, app):
    importing.add_inputs(
        app,
        importing.rows_from_text("\n".join(f"text {i}" for i in range(55))),
        datasets=[],
        concepts=[],
        author=None,
    )
    first = api.get("/apps/spam-filter/inputs").json()
    assert (len(first["inputs"]), first["count"], first["pages"], first["next_page"]) == (
        50,
        55,
        2,
        2,
    )
    second = api.get("/apps/spam-filter/inputs", page=2).json()
    assert (len(second["inputs"]), second["next_page"]) == (5, None)
    seen = {i["id"] for i in first["inputs"] + second["inputs"]}
    assert len(seen) == 55
    assert api.get("/apps/spam-filter/inputs", page=3).json()["inputs"] == []


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"dataset_id": "nope"}, 404, "app 'spam-filter' has no dataset 'nope'"),
        ({"concept": "nope"}, 404, "app 'spam-filter' has no concept 'nope'"),
        ({"state": "maybe"}, 400, "state: Input should be"),
        ({"page": "0"}, 400, "page: Input should be greater than or equal to 1"),
        ({"page": "two"}, 400, "page: Input should be a valid integer"),
    ],
)
def test_input_filters_are_validated(api, explorer, params, status, message):
    assert message in error(api.get("/apps/spam-filter/inputs", **params), status)


# Labels


@pytest.fixture
def ham(app) -> Concept:
    return Concept.objects.create(app=app, slug="ham", name="Ham")


def test_patch_replaces_the_labels_it_names(api, app, spam, ham):
    promo = Concept.objects.create(app=app, slug="promo", name="promo")
    item = add_input(app, "win cash", labels=[(spam, NEG), (promo, POS)])
    url = f"/apps/spam-filter/inputs/{item.pk}"
    response = api.patch(url, {"concepts": ["spam", "ham"]})
    assert response.status_code == 200, response.content
    body = response.json()
    # spam moves from negative to positive; promo, no longer listed, loses its label.
    assert (body["concepts"], body["negative_concepts"]) == (["ham", "spam"], [])
    assert labels_of(item) == {("spam", POS), ("ham", POS)}
    assert item.annotations.get(concept=ham).author.username == "alice"
    assert body["revision"] == 3
    # A field left out stays as it is.
    body = api.patch(url, {"negative_concepts": ["promo"]}).json()
    assert (body["concepts"], body["negative_concepts"]) == (["ham", "spam"], ["promo"])
    body = api.patch(url, {"concepts": [], "negative_concepts": []}).json()
    assert (body["concepts"], body["negative_concepts"]) == ([], [])
    assert not item.annotations.exists()


def test_patch_refuses_a_stale_revision(api, app, spam, ham):
    item = add_input(app, "win cash", labels=[(spam, POS)])
    url = f"/apps/spam-filter/inputs/{item.pk}"
    assert api.patch(url, {"concepts": ["ham"], "revision": 0}).status_code == 200
    response = api.patch(url, {"concepts": ["spam"], "negative_concepts": ["ham"], "revision": 0})
    assert "changed meanwhile" in error(response, 409)
    assert labels_of(item) == {("ham", POS)}
    item.refresh_from_db()
    assert item.revision == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"concepts": ["spam", "nope", "zilch"]}, "unknown concepts: nope, zilch"),
        ({"concepts": ["not ok"]}, "'not ok' is not a valid concept ID"),
        ({"concepts": ["spam"], "negative_concepts": ["spam"]}, "both positive and negative"),
        ({"concepts": "spam"}, "concepts: Input should be a valid list"),
        ({"labels": ["spam"]}, "unknown field: labels"),
        ({"revision": -1}, "revision: Input should be greater than or equal to 0"),
    ],
)
def test_patch_is_validated(api, app, spam, body, message):
    item = add_input(app, "win cash", labels=[(spam, NEG)])
    assert message in error(api.patch(f"/apps/spam-filter/inputs/{item.pk}", body), 400)
    assert labels_of(item) == {("spam", NEG)}


@pytest.mark.parametrize("input_id", ["abc", "0", "-3", str(2**64)])
def test_input_ids_are_validated(api, app, input_id):
    assert "input_id" in error(api.delete(f"/apps/spam-filter/inputs/{input_id}"), 400)


# Deleting inputs


def test_it_deletes_an_input(api, app, dataset, spam):
    item = add_input(app, "win cash", dataset=dataset, labels=[(spam, POS)])
    keep = add_input(app, "keep me", dataset=dataset)
    response = api.delete(f"/apps/spam-filter/inputs/{item.pk}")
    assert response.status_code == 204
    assert list(Input.objects.all()) == [keep]
    assert not Annotation.objects.exists()
    assert "not found" in error(api.delete(f"/apps/spam-filter/inputs/{item.pk}"), 404)


# Dataset versions


@pytest.mark.django_db(transaction=True)
def test_versions_snapshot_through_a_real_worker(api, app, dataset, spam, celery_worker):
    add_input(app, "win cash", dataset=dataset, labels=[(spam, POS)])
    add_input(app, "hi mom", dataset=dataset, labels=[(spam, NEG)])
    add_input(app, "not in the dataset", labels=[(spam, POS)])
    url = "/apps/spam-filter/datasets/emails/versions"
    response = api.post(url)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"] == 1
    assert created["status"] in ("PENDING", "IN_PROGRESS", "READY")
    assert wait_for(lambda: api.get(f"{url}/1").json()["status"] in ("READY", "FAILURE"))
    version = api.get(f"{url}/1").json()
    assert version["status"] == "READY", version["error"]
    assert version["input_count"] == 2
    assert version["concept_counts"] == {"spam": {"positive": 1, "negative": 1}}
    assert set(version) == {"id", "status", "created_at", "input_count", "concept_counts", "error"}
    assert api.get(url).json() == [version]
    assert api.post(url).json()["id"] == 2
    assert [v["id"] for v in api.get("/apps/spam-filter/datasets/emails").json()["versions"]] == [
        2,
        1,
    ]


@pytest.mark.django_db(transaction=True)
def test_a_new_version_with_the_queue_down_answers_503(api, dataset, dead_broker):
    response = api.post("/apps/spam-filter/datasets/emails/versions")
    assert error(response, 503) == QueueUnavailable.message
    version = DatasetVersion.objects.get(dataset=dataset)
    assert version.status == DatasetVersion.Status.FAILURE
    assert not DatasetVersion.objects.filter(status=DatasetVersion.Status.PENDING).exists()
    shown = api.get("/apps/spam-filter/datasets/emails/versions/1").json()
    assert (shown["status"], shown["error"]) == ("FAILURE", versions.QUEUE_UNAVAILABLE)


@pytest.mark.parametrize(("version_id", "status"), [("abc", 400), ("0", 400), ("7", 404)])
def test_version_ids_are_validated(api, dataset, version_id, status):
    error(api.get(f"/apps/spam-filter/datasets/emails/versions/{version_id}"), status)


# Ownership


@pytest.fixture
def alices(app, dataset, spam) -> dict[str, int]:
    item = add_input(app, "win cash", dataset=dataset, labels=[(spam, POS)])
    job = ImportJob.objects.create(app=app, user=app.owner, filename="x.csv", data=b"")
    DatasetVersion.objects.create(dataset=dataset, number=1)
    return {"input": item.pk, "job": job.pk}


def snapshot() -> list:
    """Everything the requests could change."""
    return [
        list(model.objects.order_by("pk").values())
        for model in (App, Concept, Dataset, Input, Annotation, DatasetVersion, ImportJob)
    ]


ALICES_URLS = [
    ("get", "/apps/spam-filter", None),
    ("delete", "/apps/spam-filter", None),
    ("get", "/apps/spam-filter/concepts", None),
    ("post", "/apps/spam-filter/concepts", {"id": "evil"}),
    ("get", "/apps/spam-filter/datasets", None),
    ("post", "/apps/spam-filter/datasets", {"id": "evil"}),
    ("get", "/apps/spam-filter/datasets/emails", None),
    ("post", UPLOAD, {"inputs": [{"text": "evil", "concepts": ["evil"]}]}),
    ("upload", UPLOAD, "text,label\nevil,evil\n"),
    ("get", "/apps/spam-filter/inputs", None),
    ("patch", "/apps/spam-filter/inputs/{input}", {"concepts": []}),
    ("delete", "/apps/spam-filter/inputs/{input}", None),
    ("get", "/apps/spam-filter/inputs/jobs/{job}", None),
    ("get", "/apps/spam-filter/datasets/emails/versions", None),
    ("post", "/apps/spam-filter/datasets/emails/versions", None),
    ("get", "/apps/spam-filter/datasets/emails/versions/1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ALICES_URLS)
def test_it_checks_ownership(bob_api, alices, method, path, body):
    before = snapshot()
    response = bob_api.call(method, path.format(**alices), body)
    assert "isn't yours" in error(response, 404)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/apps/spam-filter/inputs/{input}", {"concepts": []}),
        ("delete", "/apps/spam-filter/inputs/{input}", None),
        ("get", "/apps/spam-filter/inputs/jobs/{job}", None),
        ("get", "/apps/spam-filter/datasets/emails/versions/1", None),
    ],
)
def test_ids_from_another_app_are_not_found(bob_api, bob, alices, method, path, body):
    # Bob has an app and a dataset with the same IDs as Alice's: her numbers stay hers.
    Dataset.objects.create(app=App.objects.create(owner=bob, slug="spam-filter"), slug="emails")
    before = snapshot()
    assert "isn't yours" in error(bob_api.call(method, path.format(**alices), body), 404)
    assert snapshot() == before


def test_bobs_lists_leave_out_alices_objects(bob_api, bob, alices):
    theirs = App.objects.create(owner=bob, slug="spam-filter")
    emails = Dataset.objects.create(app=theirs, slug="emails")
    ham = Concept.objects.create(app=theirs, slug="ham", name="ham")
    mine = add_input(theirs, "bob's text", dataset=emails, labels=[(ham, POS)])
    apps = bob_api.get("/apps").json()
    assert [(a["id"], a["input_count"], a["concept_count"]) for a in apps] == [
        ("spam-filter", 1, 1)
    ]
    assert [c["id"] for c in bob_api.get("/apps/spam-filter/concepts").json()] == ["ham"]
    datasets = bob_api.get("/apps/spam-filter/datasets").json()
    assert [(d["id"], d["input_count"], d["version_count"]) for d in datasets] == [("emails", 1, 0)]
    assert ids(bob_api.get("/apps/spam-filter/inputs")) == {mine.pk}
    assert ids(bob_api.get("/apps/spam-filter/inputs", q="win")) == set()
    assert bob_api.get("/apps/spam-filter/datasets/emails/versions").json() == []
    assert bob_api.get("/apps/spam-filter/datasets/emails").json()["versions"] == []
