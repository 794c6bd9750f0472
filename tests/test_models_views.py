import hashlib
import html
import json
import urllib.parse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import versions
from portal.celery import app as celery_app
from portal.models import (
    DEFAULT_BASE_MODEL,
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Input,
    ModelVersion,
    TrainableModel,
    default_params,
)

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
URL = "/apps/spam-filter/models/"
MODEL = f"{URL}spam-model/"
SETUP = f"{MODEL}setup/"
Status = ModelVersion.Status


def add_input(app, text, *, dataset=None, labels=()):
    item = Input.objects.create(
        app=app, text=text, text_hash=hashlib.sha256(text.encode()).hexdigest()
    )
    if dataset is not None:
        dataset.inputs.add(item)
    for concept, value in labels:
        Annotation.objects.create(input=item, concept=concept, value=value)
    return item


def ready_version(dataset, number):
    version = DatasetVersion.objects.create(dataset=dataset, number=number)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    return version


def text(response) -> str:
    """The page's text with entities decoded and whitespace collapsed."""
    return " ".join(html.unescape(response.content.decode()).split())


def train_data(**overrides) -> dict:
    data = {
        "dataset": "emails",
        "dataset_version": "2",
        "base_embed_model": DEFAULT_BASE_MODEL,
        "concepts": ["ham", "spam"],
        "enrich_dataset": "Automatic",
        "min_value": "0",
        "max_concepts": "20",
        "C": "auto",
        "class_weight": "none",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def app(alice):
    return App.objects.create(owner=alice, slug="spam-filter")


@pytest.fixture
def dataset(app):
    dataset = Dataset.objects.create(app=app, slug="emails")
    spam = Concept.objects.create(app=app, slug="spam")
    ham = Concept.objects.create(app=app, slug="ham")
    rare = Concept.objects.create(app=app, slug="rare")
    add_input(app, "Win a prize", dataset=dataset, labels=[(spam, 1), (ham, 0)])
    add_input(app, "Cheap pills", dataset=dataset, labels=[(spam, 1), (rare, 1)])
    add_input(app, "Lunch at noon?", dataset=dataset, labels=[(ham, 1)])
    add_input(app, "See you", dataset=dataset, labels=[(ham, 1), (spam, 0)])
    return dataset


@pytest.fixture
def ready(dataset):
    """Versions 1 and 2 READY, 3 still being made: version 2 is the default."""
    ready_version(dataset, 1)
    latest = ready_version(dataset, 2)
    DatasetVersion.objects.create(dataset=dataset, number=3)
    return latest


@pytest.fixture
def model(app):
    return TrainableModel.objects.create(app=app, slug="spam-model", description="Mail filter")


@pytest.fixture
def trained(model, ready):
    params = {**default_params(), "dataset_id": "emails", "dataset_version_id": "2"}
    return ModelVersion.objects.create(
        model=model,
        number=1,
        status=Status.TRAINED,
        params={**params, "concepts": ["ham", "spam"]},
        dataset_version=ready,
        concepts=["ham", "spam"],
        progress=1.0,
        stage="Trained",
        log="10:00:01 dataset emails v2: 4 inputs\n10:00:02 fitted in 0.01 s",
        embed_seconds=1.234,
        fit_seconds=0.056,
    )


@pytest.fixture
def quiet_broker(broker):
    """The test Redis as the broker, emptied afterwards: no worker runs these tasks."""
    yield broker
    celery_app.control.purge()


# The list, the Add Model window and the model types


@pytest.mark.parametrize("headers", [{}, HX])
def test_the_sidebar_leads_to_models(alice_client, app, headers):
    response = alice_client.get(URL, headers=headers)
    assert response.status_code == 200
    assert b'href="/apps/spam-filter/models/" class="active"' in response.content


def test_it_invites_a_newcomer_to_add_a_model(alice_client, app):
    page = text(alice_client.get(URL))
    assert "Create your first model" in page
    assert '<dialog id="add-model-dialog"' in page
    assert 'data-dialog="add-model-dialog">+ Add Model</a>' in page
    # The window's one available choice, selected, and its Continue button.
    assert '<input type="radio" name="mode" value="custom" checked>' in page
    assert "<b>Build a Custom Model</b>" in page
    assert '<input type="radio" name="mode" value="pretrained" disabled>' in page
    assert f'<form method="get" action="{URL}types/">' in page
    assert '<button class="primary" type="submit">Continue</button>' in page


def test_it_lists_models_with_their_latest_version(alice_client, app, trained):
    ModelVersion.objects.create(
        model=trained.model, number=2, status=Status.FAILED, params=trained.params
    )
    TrainableModel.objects.create(app=app, slug="fresh")
    page = text(alice_client.get(URL))
    row = page.split(f'href="{MODEL}"')[1].split("</tr>")[0]
    assert "Transfer Learn" in row
    assert "v2" in row
    assert '<span class="status code-21106" title="Status 21106">Training failed</span>' in row
    assert "Mail filter" in row
    fresh = page.split(f'href="{URL}fresh/"')[1].split("</tr>")[0]
    assert "Not trained yet" in fresh


def test_the_list_does_not_query_per_model(alice_client, app, trained):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            alice_client.get(URL)
        return len(captured)

    one = queries()
    for n in range(3):
        other = TrainableModel.objects.create(app=app, slug=f"m{n}")
        ModelVersion.objects.create(model=other, number=1, params=trained.params)
    assert queries() == one


def test_the_model_page_does_not_query_per_version(alice_client, trained):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            alice_client.get(MODEL)
        return len(captured)

    one = queries()
    for n in range(2, 5):
        ModelVersion.objects.create(
            model=trained.model,
            number=n,
            params=trained.params,
            status=Status.TRAINED,
            dataset_version=trained.dataset_version,
        )
    assert queries() == one


@pytest.mark.parametrize("headers", [{}, HX])
def test_the_types_page_offers_transfer_learn_for_text(alice_client, app, headers):
    response = alice_client.get(f"{URL}types/?mode=custom", headers=headers)
    assert response.status_code == 200
    page = text(response)
    text_section = page.split("<h2>Text</h2>")[1].split("<h2>")[0]
    assert f'<a class="card type-card" href="{URL}new/">' in text_section
    assert "<h3>Transfer Learn</h3>" in text_section
    assert "logistic-regression head on top of a base embedding model" in text_section
    assert 'aria-disabled="true"' in page.split("<h2>Image</h2>")[1]


# Creating a model


@pytest.mark.parametrize("headers", [{}, HX])
def test_the_create_page_asks_for_a_model_id(alice_client, app, headers):
    response = alice_client.get(f"{URL}new/", headers=headers)
    assert response.status_code == 200
    page = text(response)
    assert '<label for="id_model_slug">Model ID</label>' in page
    assert "Continue to Configure Model</button>" in page


def test_it_creates_a_model_and_goes_to_its_set_up(alice_client, app):
    response = alice_client.post(f"{URL}new/", {"slug": "spam-model", "description": "Mine"})
    assert response.status_code == 302
    assert response["Location"] == SETUP
    model = TrainableModel.objects.get(app=app, slug="spam-model")
    assert model.description == "Mine"
    assert model.model_type == "embedding-classifier"
    assert model.params == default_params()
    assert not model.versions.exists()


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("has space", "Letters, digits"),
        ("-leading", "Letters, digits"),
        ("x" * 65, "Letters, digits"),
        ("", "This field is required"),
        ("new", "“new” is reserved"),
        ("Types", "“Types” is reserved"),
        ("SPAM-Model", "This app already has a model called “SPAM-Model”."),
    ],
)
def test_it_rejects_bad_model_ids(alice_client, model, slug, message):
    response = alice_client.post(f"{URL}new/", {"slug": slug})
    assert response.status_code == 200
    assert message in text(response)
    assert list(TrainableModel.objects.values_list("slug", flat=True)) == ["spam-model"]


def test_model_ids_are_per_app(alice_client, alice, model):
    other = App.objects.create(owner=alice, slug="other")
    response = alice_client.post("/apps/other/models/new/", {"slug": "spam-model"})
    assert response.status_code == 302
    assert TrainableModel.objects.filter(app=other, slug="spam-model").exists()


# The set-up form


def test_the_set_up_form_has_the_portal_defaults(alice_client, model, ready):
    page = text(alice_client.get(SETUP))
    assert '<option value="emails" selected>emails</option>' in page
    # The latest READY version is chosen; the one being made is not offered.
    assert '<option value="2" selected>v2 · ' in page
    assert "· 4 inputs</option>" in page
    assert '<option value="1">v1 · ' in page
    assert '<option value="3"' not in page
    default = "all-MiniLM-L6-v2-onnx"
    assert f'<option value="{default}" selected>{default} (default)</option>' in page
    assert '<option value="Automatic" selected>Automatic</option>' in page
    assert 'name="concepts_mutually_exclusive" id="id_concepts_mutually_exclusive">' in page
    assert "Set concepts as mutually exclusive" in page
    assert "<summary>Configure inference settings (optional)</summary>" in page
    assert "<summary>Advanced</summary>" in page
    assert 'id="id_min_value" min="0" max="1" step="any" required value="0.0"' in page
    assert 'id="id_max_concepts" min="1" max="200" step="1" required value="20"' in page
    assert 'name="C" id="id_C" value="auto"' in page
    assert '<option value="Auto" selected>Auto</option>' in page
    assert '<option value="Hybrid">Hybrid</option>' in page
    assert "Train Model</button>" in page


def test_every_concept_of_the_version_is_checked_with_its_counts(alice_client, model, ready):
    page = text(alice_client.get(SETUP))
    concepts = page.split('<fieldset class="field concept-field">')[1].split("</fieldset>")[0]
    for slug, positive, negative in [("ham", 2, 1), ("rare", 1, 0), ("spam", 2, 1)]:
        item = concepts.split(f'value="{slug}"')[1].split("</li>")[0]
        assert item.startswith(" checked>")
        assert f"{positive} positive · {negative} negative" in item
        assert ("Fewer than 2 positive examples" in item) == (slug == "rare")
    # The inference subset starts empty: every concept is predicted.
    subset = page.split('id="select-concepts"')[1].split("</fieldset>")[0]
    assert 'name="select_concepts" value="spam">' in subset
    assert " checked>" not in subset


def test_the_form_is_filled_from_the_models_params(alice_client, model, ready):
    model.params = {
        "dataset_id": "emails",
        "dataset_version_id": "2",
        "concepts": ["spam"],
        "train_params": {
            "base_embed_model": "all-MiniLM-L6-v2",
            "enrich_dataset": "Disabled",
            "C": 0.5,
            "class_weight": "balanced",
            "head": "Hybrid",
        },
        "inference_params": {"min_value": 0.25, "max_concepts": 3, "select_concepts": ["spam"]},
        "concepts_mutually_exclusive": True,
    }
    model.save()
    page = text(alice_client.get(SETUP))
    assert '<option value="2" selected>v2 · ' in page
    concepts = page.split('<fieldset class="field concept-field">')[1].split("</fieldset>")[0]
    assert 'value="spam" checked>' in concepts
    assert 'value="ham">' in concepts
    assert 'id="id_concepts_mutually_exclusive" checked>' in page
    assert '<option value="Disabled" selected>Disabled</option>' in page
    assert 'value="0.25"' in page
    assert 'id="id_max_concepts" min="1" max="200" step="1" required value="3"' in page
    assert 'name="C" id="id_C" value="0.5"' in page
    assert '<option value="balanced" selected>Balanced</option>' in page
    assert '<option value="Hybrid" selected>Hybrid</option>' in page
    subset = page.split('id="select-concepts"')[1].split("</fieldset>")[0]
    assert 'value="spam" checked>' in subset


def test_training_again_starts_from_the_newest_version_and_says_so(alice_client, trained):
    model = trained.model
    model.params = {**trained.params, "dataset_version_id": "1"}
    model.save()
    page = text(alice_client.get(SETUP))
    assert '<option value="2" selected>v2 · ' in page
    assert "The last training used emails v1; the newest version, v2, is chosen." in page
    model.params = trained.params  # trained on the newest: nothing to say
    model.save()
    page = text(alice_client.get(SETUP))
    assert '<option value="2" selected>v2 · ' in page
    assert "The last training used" not in page


def test_changing_the_dataset_re_renders_its_parts(alice_client, app, model, ready):
    other = Dataset.objects.create(app=app, slug="other")
    topic = Concept.objects.create(app=app, slug="topic")
    add_input(app, "Elections", dataset=other, labels=[(topic, 1)])
    ready_version(other, 1)
    response = alice_client.get(f"{SETUP}?dataset=other", headers=HX)
    assert response.status_code == 200
    page = text(response)
    assert "<html" not in page
    assert page.startswith('<div id="dataset-parts">')
    assert '<option value="other" selected>other</option>' in page
    assert '<option value="1" selected>v1 · ' in page
    assert 'name="concepts" value="topic" checked>' in page
    assert 'value="spam"' not in page.split('id="select-concepts"')[0]
    # The inference subset follows, swapped out of band.
    assert '<fieldset class="field" id="select-concepts" hx-swap-oob="true">' in page
    assert 'name="select_concepts" value="topic">' in page


def test_changing_the_version_re_renders_its_concepts(alice_client, app, dataset, model, ready):
    Input.objects.get(text="Cheap pills").annotations.filter(concept__slug="rare").delete()
    ready_version(dataset, 4)
    response = alice_client.get(f"{SETUP}?dataset=emails&dataset_version=1", headers=HX)
    page = text(response)
    assert '<option value="1" selected>v1 · ' in page
    assert 'name="concepts" value="rare" checked>' in page
    page = text(alice_client.get(f"{SETUP}?dataset=emails", headers=HX))
    assert '<option value="4" selected>v4 · ' in page
    assert 'value="rare"' not in page


def test_the_dataset_parts_are_a_page_without_javascript(alice_client, model, ready):
    response = alice_client.get(f"{SETUP}?dataset=emails&dataset_version=1")
    assert b"<html" in response.content
    assert '<option value="1" selected>v1 · ' in text(response)


def test_a_dataset_without_a_ready_version_offers_new_version(alice_client, app, model):
    Dataset.objects.create(app=app, slug="emails")
    page = text(alice_client.get(SETUP))
    assert "has no ready version" in page
    new_version = "/apps/spam-filter/datasets/emails/versions/new/"
    assert f'id="new-version" formaction="{new_version}"' in page
    assert f'hx-post="{new_version}"' in page
    assert 'hx-trigger="htmx:afterRequest from:#new-version"' in page
    assert 'href="/apps/spam-filter/datasets/emails/">Open the dataset</a>' in page


def test_a_version_being_made_is_awaited(alice_client, app, model):
    dataset = Dataset.objects.create(app=app, slug="emails")
    DatasetVersion.objects.create(dataset=dataset, number=1)
    page = text(alice_client.get(f"{SETUP}?dataset=emails", headers=HX))
    assert "is being made" in page
    assert f'hx-get="{SETUP}?dataset=emails" hx-trigger="every 1s"' in page
    assert "New version" not in page


def test_an_app_without_datasets_says_where_to_start(alice_client, model):
    page = text(alice_client.get(SETUP))
    assert "This app has no dataset yet." in page
    assert 'href="/apps/spam-filter/datasets/">Create a dataset</a>' in page


@pytest.mark.django_db(transaction=True)
def test_train_model_saves_the_params_and_queues_a_version(
    alice_client, model, ready, quiet_broker
):
    data = train_data(
        concepts=["spam", "ham"],
        concepts_mutually_exclusive="on",
        enrich_dataset="Disabled",
        min_value="0.1",
        max_concepts="5",
        select_concepts=["spam"],
        C="2.5",
        class_weight="balanced",
        head="Embedding only",
    )
    response = alice_client.post(SETUP, data)
    assert response.status_code == 302
    assert response["Location"] == MODEL
    model.refresh_from_db()
    assert model.params == {
        "dataset_id": "emails",
        "dataset_version_id": "2",
        "concepts": ["spam", "ham"],
        "train_params": {
            "base_embed_model": DEFAULT_BASE_MODEL,
            "enrich_dataset": "Disabled",
            "C": 2.5,
            "class_weight": "balanced",
            "head": "Embedding only",
        },
        "inference_params": {"min_value": 0.1, "max_concepts": 5, "select_concepts": ["spam"]},
        "concepts_mutually_exclusive": True,
    }
    version = model.versions.get()
    assert version.number == 1
    assert version.status == Status.QUEUED
    assert version.params == model.params
    assert version.dataset_version == ready
    assert version.concepts == ["spam", "ham"]
    # No worker runs here: the model page shows the version waiting, and polling.
    page = text(alice_client.get(MODEL))
    row = page.split('id="model-version-1"')[1].split("</tr>")[0]
    assert f'hx-get="{MODEL}versions/1/status/?seen=' in row
    assert 'hx-trigger="every 1s"' in row
    assert 'title="Status 21103 MODEL-QUEUED-FOR-TRAINING">Waiting to train</span>' in row
    assert "Waiting for a worker" in row


@pytest.mark.django_db(transaction=True)
def test_the_defaults_train_and_train_again_adds_a_version(
    alice_client, model, ready, quiet_broker
):
    assert alice_client.post(SETUP, train_data(C="", class_weight="none")).status_code == 302
    model.refresh_from_db()
    assert model.params["train_params"] == default_params()["train_params"]
    assert model.params["inference_params"] == default_params()["inference_params"]
    assert model.params["concepts_mutually_exclusive"] is False
    assert alice_client.post(SETUP, train_data(dataset_version="1")).status_code == 302
    numbers = [(v.number, v.params["dataset_version_id"]) for v in model.versions.all()]
    assert numbers == [(2, "1"), (1, "2")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset": "", "dataset_version": ""}, "Choose a dataset."),
        ({"dataset": "nope"}, "Choose a dataset."),
        ({"dataset_version": ""}, "Choose a version of dataset emails."),
        ({"dataset_version": "9"}, "Choose a version of dataset emails."),
        ({"dataset_version": "3"}, "Version 3 of dataset emails is not ready."),
        ({"concepts": None}, "Choose at least one concept to train."),
        ({"concepts": ["spam", "nope"]}, "Concept 'nope' is not in version 2 of dataset emails."),
    ],
)
@pytest.mark.parametrize("headers", [{}, HX])
def test_train_model_says_what_is_missing(alice_client, model, ready, overrides, message, headers):
    response = alice_client.post(SETUP, train_data(**overrides), headers=headers)
    assert response.status_code == 200
    page = text(response)
    assert f'<div class="message error setup-error" role="alert">{message} </div>' in page
    assert not ModelVersion.objects.exists()
    model.refresh_from_db()
    assert model.params == default_params()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"C": "-1"}, "Enter “auto” or a positive number"),
        ({"C": "lots"}, "Enter “auto” or a positive number"),
        ({"min_value": "1.5"}, "less than or equal to 1"),
        ({"max_concepts": "0"}, "greater than or equal to 1"),
        ({"max_concepts": "201"}, "less than or equal to 200"),
        ({"enrich_dataset": "Sometimes"}, "Select a valid choice"),
        ({"base_embed_model": "gpt-9"}, "Select a valid choice"),
        ({"concepts": ["no spaces allowed"]}, "Select a valid choice"),
    ],
)
def test_train_model_checks_each_setting(alice_client, model, ready, overrides, message):
    response = alice_client.post(SETUP, train_data(**overrides))
    assert response.status_code == 200
    assert message in text(response)
    assert not ModelVersion.objects.exists()


def test_a_rejected_form_keeps_what_was_chosen(alice_client, model, ready):
    response = alice_client.post(
        SETUP, train_data(dataset_version="1", concepts=["spam"], C="oops", min_value="0.3")
    )
    page = text(response)
    assert '<option value="1" selected>v1 · ' in page
    assert 'name="concepts" value="spam" checked>' in page
    assert 'name="concepts" value="ham">' in page
    assert 'value="0.3"' in page
    assert 'name="C" id="id_C" value="oops"' in page
    # The section with the error opens.
    assert '<details class="panel setup-section collapsible" open>' in page


# The model page and its versions


def test_the_model_page_before_training(alice_client, model):
    page = text(alice_client.get(MODEL))
    assert "<h1>spam-model</h1>" in page
    assert "Transfer Learn · Text · Mail filter" in page
    assert f'<a class="button primary" href="{SETUP}">Train Model</a>' in page
    assert "Not trained yet" in page


@pytest.mark.parametrize("headers", [{}, HX])
def test_the_model_page_lists_versions(alice_client, trained, headers):
    ModelVersion.objects.create(
        model=trained.model,
        number=2,
        status=Status.TRAINING,
        params=trained.params,
        concepts=["spam"],
        progress=0.4,
        stage="Embedding 120 of 2,000 new texts",
    )
    response = alice_client.get(MODEL, headers=headers)
    assert response.status_code == 200
    page = text(response)
    assert f'<a class="button" href="{SETUP}">Configure and train again</a>' in page
    first = page.split('<tr id="model-version-1">')[1].split("</tr>")[0]
    assert 'title="Status 21100 MODEL-TRAINED">Trained</span>' in first
    assert '<span class="mono">emails</span> v2' in first
    assert '<td class="num">1.23 s</td> <td class="num">0.06 s</td>' in first
    assert f'hx-get="{MODEL}versions/1/"' in first
    second = page.split('id="model-version-2"')[1].split("</tr>")[0]
    assert f'hx-get="{MODEL}versions/2/status/?seen=' in second
    assert 'hx-trigger="every 1s"' in second
    assert ">Training…</span>" in second
    assert 'aria-valuenow="40"><span style="width: 40%">' in second
    assert "Embedding 120 of 2,000 new texts · 40%" in second
    assert '<td class="num">—</td>' in second


@pytest.mark.parametrize("status", [Status.QUEUED, Status.TRAINING])
def test_the_status_fragment_polls_while_the_version_is_unfinished(alice_client, trained, status):
    ModelVersion.objects.filter(pk=trained.pk).update(status=status, progress=0.5)
    response = alice_client.get(f"{MODEL}versions/1/status/", headers=HX)
    assert response.status_code == 200
    page = text(response)
    assert "<html" not in page
    seen = urllib.parse.quote(ModelVersion.objects.get(pk=trained.pk).state)
    url = f"{MODEL}versions/1/status/?seen={seen}"
    assert page.startswith(f'<tr id="model-version-1" hx-get="{url}"')
    assert 'hx-trigger="every 1s"' in page
    assert "HX-Trigger" not in response.headers
    assert 'role="progressbar"' in page


@pytest.mark.parametrize("status", [Status.TRAINED, Status.FAILED])
def test_the_status_fragment_stops_polling_once_finished(alice_client, trained, status):
    ModelVersion.objects.filter(pk=trained.pk).update(status=status, error="no labeled input")
    page = text(alice_client.get(f"{MODEL}versions/1/status/", headers=HX))
    assert page.startswith('<tr id="model-version-1">')
    assert "hx-trigger" not in page
    assert "progressbar" not in page
    assert f'title="Status {status.value} {status.label}">' in page
    assert ModelVersion.words(status) in page
    assert ("no labeled input" in page) == (status == Status.FAILED)


def test_the_status_fragment_tells_the_page_when_the_version_changed(alice_client, trained):
    ModelVersion.objects.filter(pk=trained.pk).update(status=Status.TRAINING, stage="Fitting")
    url = f"{MODEL}versions/1/status/"
    shown = ModelVersion.objects.get(pk=trained.pk).state
    assert "HX-Trigger" not in alice_client.get(url, {"seen": shown}, headers=HX).headers
    ModelVersion.objects.filter(pk=trained.pk).update(progress=0.9, log="more")
    response = alice_client.get(url, {"seen": shown}, headers=HX)
    assert json.loads(response["HX-Trigger"]) == {"model-version-changed": 1}
    ModelVersion.objects.filter(pk=trained.pk).update(status=Status.TRAINED, stage="Trained")
    response = alice_client.get(url, {"seen": shown}, headers=HX)
    events = {"model-version-changed": 1, "model-version-finished": 1}
    assert json.loads(response["HX-Trigger"]) == events


def test_the_model_page_head_and_details_follow_the_versions_table(alice_client, trained):
    ModelVersion.objects.filter(pk=trained.pk).update(status=Status.TRAINING)
    page = text(alice_client.get(MODEL))
    head = page.split('<div class="page-head" id="model-head"')[1].split(">")[0]
    assert 'hx-trigger="model-version-finished from:body"' in head
    assert 'hx-select="#model-head"' in head
    assert "Try your own text" not in page.split("<h2>Versions</h2>")[0].split("<dialog")[0]
    ModelVersion.objects.filter(pk=trained.pk).update(status=Status.TRAINED)
    page = text(alice_client.get(MODEL))
    assert "+ Try your own text" in page.split('id="model-head"')[1].split("<dialog")[0]


def test_the_status_url_is_the_model_page_without_javascript(alice_client, trained):
    response = alice_client.get(f"{MODEL}versions/1/status/")
    assert b"<html" in response.content
    assert b"Configure and train again" in response.content


def test_the_model_page_shows_the_latest_versions_details(alice_client, trained):
    page = text(alice_client.get(MODEL))
    details = page.split('<section id="version-details"')[1].split("</section>")[0]
    assert "<h2>Version v1</h2>" in details
    assert '<tr><th>Concepts</th><td class="mono">ham, spam</td></tr>' in details
    assert "<tr><th>C</th><td>auto</td></tr>" in details
    assert "<tr><th>Enrich dataset</th><td>Automatic</td></tr>" in details
    assert '<pre class="training-log">10:00:01 dataset emails v2: 4 inputs' in details
    assert f'href="{MODEL}versions/1/log.txt" download>Download log</a>' in details
    assert "hx-trigger" not in details.split(">")[0]


def test_the_details_of_a_version_are_a_fragment_over_htmx(alice_client, trained):
    ModelVersion.objects.create(
        model=trained.model,
        number=2,
        status=Status.FAILED,
        params=trained.params,
        error="no input in version 2 is labeled with spam",
        log="10:00:01 failed: no input in version 2 is labeled with spam",
    )
    response = alice_client.get(f"{MODEL}versions/2/", headers=HX)
    page = text(response)
    assert "<html" not in page
    assert page.startswith('<section id="version-details"')
    assert "Training failed: no input in version 2 is labeled with spam" in html.unescape(
        page.replace("<b>", "").replace("</b>", "")
    )
    assert "hx-trigger" not in page
    # Without JavaScript the link opens the model page with that version's details.
    page = text(alice_client.get(f"{MODEL}versions/2/"))
    assert "<html" in page
    assert "<h2>Version v2</h2>" in page
    assert text(alice_client.get(f"{MODEL}?version=1")).count("<h2>Version v1</h2>") == 1


def test_the_details_of_an_unfinished_version_refresh(alice_client, trained):
    ModelVersion.objects.filter(pk=trained.pk).update(status=Status.TRAINING, log="")
    page = text(alice_client.get(f"{MODEL}versions/1/", headers=HX))
    assert f'hx-get="{MODEL}versions/1/" hx-trigger="model-version-changed from:body"' in page
    assert "The log appears when training starts." in page


def test_it_downloads_the_log(alice_client, trained):
    response = alice_client.get(f"{MODEL}versions/1/log.txt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="spam-filter_spam-model_v1_training.log"'
    )
    assert response.content.decode() == trained.log


def test_it_deletes_a_model_and_its_versions(alice_client, app, trained):
    page = text(alice_client.get(MODEL))
    assert "Delete model spam-model? This deletes 1 model version." in page.replace(
        '<b class="mono">', ""
    ).replace("</b>", "")
    response = alice_client.post(f"{MODEL}delete/", follow=True)
    assert response.redirect_chain == [(URL, 302)]
    assert "Model “spam-model” and its 1 version were deleted." in text(response)
    assert not TrainableModel.objects.exists()
    assert not ModelVersion.objects.exists()
    assert DatasetVersion.objects.count() == 3


def test_delete_needs_a_post(alice_client, model):
    assert alice_client.get(f"{MODEL}delete/").status_code == 405
    assert TrainableModel.objects.exists()


# Ownership


def all_urls():
    return [
        ("get", URL),
        ("get", f"{URL}types/"),
        ("get", f"{URL}new/"),
        ("post", f"{URL}new/"),
        ("get", MODEL),
        ("get", SETUP),
        ("get", f"{SETUP}?dataset=emails&dataset_version=1"),
        ("post", SETUP),
        ("get", f"{MODEL}versions/1/"),
        ("get", f"{MODEL}versions/1/status/"),
        ("get", f"{MODEL}versions/1/log.txt"),
        ("post", f"{MODEL}delete/"),  # last: the owner test goes through them in order
    ]


@pytest.mark.parametrize(("method", "url"), all_urls())
@pytest.mark.parametrize("headers", [{}, HX])
@pytest.mark.parametrize("user", ["bob", "charlie"])
def test_it_checks_ownership(client, request, trained, user, method, url, headers):
    client.force_login(request.getfixturevalue(user))
    data = {**train_data(), "slug": "intruder"}
    response = getattr(client, method)(url, data, headers=headers)
    assert response.status_code == 404
    assert list(TrainableModel.objects.values_list("slug", "params")) == [
        ("spam-model", default_params())
    ]
    assert list(ModelVersion.objects.values_list("number", "status")) == [(1, Status.TRAINED)]


@pytest.mark.parametrize(("method", "url"), all_urls()[4:])
def test_an_app_of_the_same_name_does_not_reach_the_model(client, bob, trained, method, url):
    App.objects.create(owner=bob, slug="spam-filter")
    client.force_login(bob)
    response = getattr(client, method)(url, train_data())
    assert response.status_code == 404
    assert TrainableModel.objects.get().params == default_params()
    assert ModelVersion.objects.count() == 1


def test_the_owner_reaches_every_url(alice_client, trained):
    for method, url in all_urls():
        response = getattr(alice_client, method)(url, {"slug": "another"})
        assert response.status_code in (200, 302), url


@pytest.mark.parametrize(("method", "url"), all_urls())
def test_anonymous_users_are_sent_to_sign_in(client, trained, method, url):
    response = getattr(client, method)(url, train_data())
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert TrainableModel.objects.count() == 1
    assert ModelVersion.objects.count() == 1
