"""The feedback loop: a Try your own text trial or an API prediction, corrected, goes
back into a dataset as a labeled input."""

import json
import re
import time

import pytest

from classifier import enrich
from classifier.embedders import DEFAULT_MODEL
from portal import embedding
from portal.client import ApiError, Client
from portal.models import Annotation, ApiToken, App, Dataset, Input, text_hash

pytestmark = pytest.mark.django_db

TRY = "/apps/spam-filter/models/detector/try/"
ADD = TRY + "add/"
FEEDBACK = "/api/v1/apps/spam-filter/models/detector/feedback"
HTMX = {"HX-Request": "true"}
TEXT = "You have won a free holiday! Call now to claim your prize."


def labels_of(item: Input) -> dict[str, int]:
    return dict(Annotation.objects.filter(input=item).values_list("concept__slug", "value"))


def in_dataset(item: Input) -> list[str]:
    return list(item.datasets.values_list("slug", flat=True))


@pytest.fixture
def owner_client(client, trained_model):
    client.force_login(trained_model.app.owner)
    return client


@pytest.fixture
def token(trained_model) -> dict:
    _, key = ApiToken.issue(trained_model.app.owner, "tests")
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


def api_post(client, token: dict, body: object, url: str = FEEDBACK):
    return client.post(url, json.dumps(body), content_type="application/json", **token)


# Try your own text


def test_the_answer_offers_to_add_the_text_with_the_predicted_concepts(owner_client):
    response = owner_client.post(TRY, {"text": TEXT}, headers=HTMX)
    html = response.content.decode()
    assert b"<html" not in response.content
    assert "Correct the concepts, then add this text to a dataset" in html
    assert re.search(r'name="concepts" value="spam" checked>', html)
    assert re.search(r'name="concepts" value="ham">', html)  # predicted below 0.5: not ticked
    assert '<option value="emails" selected>emails</option>' in html  # the training dataset
    assert f'name="text" value="{TEXT}"' in html
    assert "Add to dataset" in html


def test_add_to_dataset_creates_the_input_with_the_corrected_concepts(owner_client):
    data = {"text": TEXT, "concepts": ["ham"], "predicted": ["spam"], "dataset": "emails"}
    response = owner_client.post(ADD, data, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Added a new input to emails, labeled ham, not spam." in html
    assert 'href="/apps/spam-filter/inputs/?dataset=emails"' in html
    item = Input.objects.get(text=TEXT)
    assert item.text_hash == text_hash(TEXT)
    assert labels_of(item) == {"ham": Annotation.POSITIVE, "spam": Annotation.NEGATIVE}
    assert in_dataset(item) == ["emails"]


def test_a_text_already_in_the_app_is_relabeled_not_added_twice(owner_client, trained_model):
    app = trained_model.app
    Dataset.objects.create(app=app, slug="later")
    existing = Input.objects.get(app=app, text__startswith="WINNER!!")  # a spam input of emails
    data = {"text": existing.text, "concepts": ["spam"], "dataset": "later"}
    response = owner_client.post(ADD, data, headers=HTMX)

    assert "The text was already an input: it is in later now, labeled spam." in (
        response.content.decode()
    )
    assert Input.objects.filter(app=app).count() == 10
    existing.refresh_from_db()
    assert sorted(in_dataset(existing)) == ["emails", "later"]
    assert existing.revision == 0  # the label was already there: nothing changed
    owner_client.post(
        ADD,
        {"text": existing.text, "concepts": ["ham"], "predicted": ["spam"], "dataset": "emails"},
        headers=HTMX,
    )
    existing.refresh_from_db()
    assert labels_of(existing) == {"ham": Annotation.POSITIVE, "spam": Annotation.NEGATIVE}
    assert existing.revision > 0  # open explorer tabs see the change


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": "  ", "dataset": "emails"}, "Nothing was added: the text is empty."),
        ({"text": TEXT, "dataset": ""}, "Choose a dataset."),
        ({"text": TEXT, "dataset": "emails", "concepts": ["nope"]}, "unknown concepts: nope"),
    ],
)
def test_bad_feedback_says_why_and_adds_nothing(owner_client, data, message):
    response = owner_client.post(ADD, data, headers=HTMX)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'id="try-feedback"' in response.content.decode()  # the form, to try again
    assert Input.objects.count() == 10


def test_without_javascript_it_redirects_with_a_message(owner_client):
    data = {"text": TEXT, "concepts": ["spam"], "dataset": "emails"}
    response = owner_client.post(ADD, data, follow=True)
    assert response.redirect_chain[-1][0] == TRY
    assert "Added a new input to emails, labeled spam." in response.content.decode()


def test_another_users_model_or_dataset_is_not_found(client, trained_model, bob):
    client.force_login(bob)
    data = {"text": TEXT, "concepts": ["spam"], "dataset": "emails"}
    assert client.post(ADD, data).status_code == 404
    App.objects.create(owner=bob, slug="spam-filter")
    assert client.post(ADD, data).status_code == 404
    client.force_login(trained_model.app.owner)
    bobs = App.objects.get(owner=bob)
    Dataset.objects.create(app=bobs, slug="bobs-data")
    assert client.post(ADD, data | {"dataset": "bobs-data"}).status_code == 404
    assert Input.objects.count() == 10


# The API


def test_the_api_adds_a_corrected_prediction(client, token):
    body = {"text": TEXT, "concepts": ["ham"], "negative_concepts": ["spam"]}
    response = api_post(client, token, body)

    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["text"] == TEXT
    assert answer["concepts"] == ["ham"]
    assert answer["negative_concepts"] == ["spam"]
    assert answer["datasets"] == ["emails"]  # the model's training dataset by default
    item = Input.objects.get(pk=answer["id"])
    assert labels_of(item) == {"ham": Annotation.POSITIVE, "spam": Annotation.NEGATIVE}

    again = api_post(client, token, {"text": TEXT, "concepts": ["spam"], "dataset_id": "emails"})
    assert again.status_code == 200
    assert again.json()["id"] == answer["id"]
    # The named label changes; the others stay.
    assert again.json()["concepts"] == ["ham", "spam"]
    assert again.json()["negative_concepts"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "", "concepts": ["spam"]}, "the text is empty"),
        ({"text": TEXT, "concepts": ["spam"], "negative_concepts": ["spam"]}, "both positive"),
        ({"text": TEXT, "concepts": ["unknown"]}, "unknown concepts: unknown"),
        ({"text": TEXT, "concepts": ["not an id!"]}, "not a valid concept ID"),
        ({"text": TEXT, "concept": ["spam"]}, "unknown field: concept"),
        ({"text": 5}, "text: Input should be a valid string"),
        ({"text": TEXT, "dataset_id": "nope"}, "app 'spam-filter' has no dataset 'nope'"),
    ],
)
def test_the_api_refuses_bad_feedback_and_changes_nothing(client, token, body, message):
    response = api_post(client, token, body)
    assert response.status_code in (400, 404)
    assert message in response.json()["error"]
    assert Input.objects.count() == 10


def test_the_api_hides_another_users_model(client, trained_model, bob):
    _, key = ApiToken.issue(bob, "bob")
    App.objects.create(owner=bob, slug="spam-filter")
    bobs = {"HTTP_AUTHORIZATION": f"Token {key}"}
    response = api_post(client, bobs, {"text": TEXT, "concepts": ["spam"]})
    assert response.status_code == 404
    assert Input.objects.count() == 10


@pytest.mark.django_db(transaction=True)
def test_the_client_feeds_back_and_the_text_is_embedded(live_server, celery_worker, trained_model):
    _, key = ApiToken.issue(trained_model.app.owner, "laptop")
    model = Client(live_server.url, key).app("spam-filter").model("detector")

    answer = model.feedback(TEXT, ["spam"])

    assert answer["concepts"] == ["spam"] and answer["datasets"] == ["emails"]
    with pytest.raises(ApiError, match="unknown concepts: nope"):
        model.feedback("Another text", ["nope"])
    # Embedded by the worker, as uploads are, with the Enrich corpus after it.
    deadline = time.monotonic() + 180
    wanted = {text_hash(t) for t in [TEXT, *enrich.background_texts()]}
    while len(embedding.cached(DEFAULT_MODEL, list(wanted))) < len(wanted):
        assert time.monotonic() < deadline, "the new input was never embedded"
        time.sleep(0.5)
