import re
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from classifier.active import uncertainty
from portal import labeling, labels, suggesting, versions
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Embedding,
    Input,
    ModelVersion,
    TrainableModel,
    text_hash,
)
from tests.test_tasks import wait_for

pytestmark = pytest.mark.django_db

URL = "/apps/spam-filter/label-next/"
ACCEPT, SKIP, UNDO = URL + "accept/", URL + "skip/", URL + "undo/"
HTMX = {"HX-Request": "true"}
UNLABELED = [
    "Claim your free prize now! Text WIN to 80082 before midnight.",
    "Are you coming to the barbecue on Saturday? Bring a salad.",
    "Your parcel is waiting, confirm your address here to arrange delivery.",
    "The quarterly report is attached, let me know what you think.",
]


def add_inputs(app: App, dataset: Dataset, texts: list[str]) -> list[Input]:
    items = [Input.objects.create(app=app, text=t, text_hash=text_hash(t)) for t in texts]
    dataset.inputs.add(*items)
    return items


@pytest.fixture
def emails(app, spam, ham) -> Dataset:
    """Alice's dataset "emails": the four unlabeled texts, no model."""
    dataset = Dataset.objects.create(app=app, slug="emails")
    add_inputs(app, dataset, UNLABELED)
    return dataset


@pytest.fixture
def with_model(trained_model) -> Dataset:
    """The trained "detector" (spam, ham) and the four unlabeled texts in its dataset."""
    dataset = Dataset.objects.get(app=trained_model.app, slug="emails")
    add_inputs(trained_model.app, dataset, UNLABELED)
    return dataset


def shown(response) -> Input:
    match = re.search(r'name="input" value="(\d+)"', response.content.decode())
    assert match, response.content.decode()
    return Input.objects.get(pk=match.group(1))


def checked(response) -> set[str]:
    return set(
        re.findall(r'name="concepts" value="([\w-]+)"[^>]*\bchecked\b', response.content.decode())
    )


def form(item: Input, *concepts: str, dataset: str = "emails") -> dict:
    return {"dataset": dataset, "input": item.pk, "revision": item.revision, "concepts": concepts}


def labels_of(item: Input) -> dict[str, int]:
    return dict(item.annotations.values_list("concept__slug", "value"))


# Picking


def test_without_a_model_it_picks_an_unlabeled_input_at_random(alice_client, emails, spam):
    labeled = add_inputs(emails.app, emails, ["Already labeled as spam."])[0]
    Annotation.objects.create(input=labeled, concept=spam)
    seen = set()
    for _ in range(25):
        response = alice_client.get(URL)
        assert response.status_code == 200
        assert "Picked at random: no model is trained" in response.content.decode()
        seen.add(shown(response).text)
        assert checked(response) == set()
    assert seen <= set(UNLABELED)
    assert len(seen) > 1  # random, not always the same one


def test_with_a_model_the_least_certain_input_comes_first_with_its_suggestion(
    alice_client, with_model
):
    response = alice_client.get(URL + "?dataset=emails")
    item = shown(response)
    assert item.text in UNLABELED
    inputs = list(Input.objects.filter(text__in=UNLABELED).order_by("pk"))
    version = suggesting.latest_version(with_model.app, with_model)
    probabilities = suggesting.scores(version, inputs)
    doubts = uncertainty(probabilities)
    assert item == inputs[int(np.argmax(doubts))]
    # The model's suggestion is selected: every concept it gives 0.5 or more.
    row = probabilities[inputs.index(item)]
    expected = {c for c, p in zip(suggesting.concepts(version), row, strict=True) if p >= 0.5}
    assert checked(response) == expected
    html = response.content.decode()
    assert "Model <b>detector</b> v1 is least sure of this input" in html
    assert f"{round(100 * row[0])}%" in html


# Accept


def test_accept_saves_the_selection_and_the_models_other_concepts_as_negatives(
    alice_client, with_model, alice
):
    item = shown(alice_client.get(URL))
    response = alice_client.post(ACCEPT, form(item, "spam"), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "Saved: spam; not ham." in html
    assert labels_of(item) == {"spam": Annotation.POSITIVE, "ham": Annotation.NEGATIVE}
    assert set(item.annotations.values_list("author", flat=True)) == {alice.pk}
    following = shown(response)
    assert following != item and following.text in UNLABELED
    assert "<b>1</b> labeled today" in html
    assert "<b>3</b> of 14 unlabeled left" in html


def test_accept_without_javascript_goes_back_to_the_page_with_a_message(alice_client, emails):
    item = shown(alice_client.get(URL))
    response = alice_client.post(ACCEPT, form(item, "ham"), follow=True)
    assert response.redirect_chain[0][0] == URL + "?dataset=emails"
    assert "Saved: ham." in response.content.decode()
    assert labels_of(item) == {"ham": Annotation.POSITIVE}  # no model: no negatives
    assert shown(response) != item


def test_accept_with_nothing_selected_and_no_model_saves_nothing(alice_client, emails):
    item = shown(alice_client.get(URL))
    response = alice_client.post(ACCEPT, form(item), headers=HTMX)
    assert "Select at least one concept, or skip this input." in response.content.decode()
    assert not Annotation.objects.exists()


def test_accept_with_nothing_selected_marks_every_model_concept_negative(alice_client, with_model):
    item = shown(alice_client.get(URL))
    alice_client.post(ACCEPT, form(item), headers=HTMX)
    assert labels_of(item) == {"spam": Annotation.NEGATIVE, "ham": Annotation.NEGATIVE}


# Skip and undo


def test_a_skipped_input_does_not_come_back_until_the_others_were_seen(alice_client, emails):
    first = shown(alice_client.get(URL))
    response = alice_client.post(SKIP, form(first), headers=HTMX)
    assert "Skipped." in response.content.decode()
    seen = [first, shown(response)]
    for _ in range(2):
        response = alice_client.post(SKIP, form(seen[-1]), headers=HTMX)
        seen.append(shown(response))
    assert len(set(seen)) == 4  # each input once
    for _ in range(10):
        assert shown(alice_client.get(URL)) == seen[-1]  # the only one not skipped
    response = alice_client.post(SKIP, form(seen[-1]), headers=HTMX)
    assert "the ones you skipped come round again" in response.content.decode()
    assert shown(response) != seen[-1]
    assert not Annotation.objects.exists()


def test_undo_takes_back_the_last_accept(alice_client, with_model):
    item = shown(alice_client.get(URL))
    alice_client.post(ACCEPT, form(item, "ham"), headers=HTMX)
    response = alice_client.post(UNDO, {"dataset": "emails"}, headers=HTMX)
    html = response.content.decode()
    assert "Undone." in html
    assert labels_of(item) == {}
    assert shown(response) == item
    assert checked(response) == {"ham"}  # as the person had chosen it
    assert "<b>4</b> of 14 unlabeled left" in html
    response = alice_client.post(UNDO, {"dataset": "emails"}, headers=HTMX)
    assert "Nothing to undo." in response.content.decode()


def test_undo_without_javascript_shows_what_the_person_had_chosen(alice_client, with_model):
    page = alice_client.get(URL)
    item, suggested = shown(page), checked(page)
    choice = "ham" if "spam" in suggested else "spam"  # not what the model suggests
    alice_client.post(ACCEPT, form(item, choice), follow=True)
    response = alice_client.post(UNDO, {"dataset": "emails"}, follow=True)
    assert "Undone." in response.content.decode()
    assert labels_of(item) == {}
    assert shown(response) == item
    assert checked(response) == {choice} != suggested


def test_undo_takes_back_the_last_skip(alice_client, emails):
    item = shown(alice_client.get(URL))
    alice_client.post(SKIP, form(item), headers=HTMX)
    response = alice_client.post(UNDO, {"dataset": "emails"}, follow=True)
    assert "Undone." in response.content.decode()
    assert shown(response) == item
    # No longer skipped: with the other three labeled, it is the one shown.
    for other in Input.objects.exclude(pk=item.pk):
        Annotation.objects.create(input=other, concept=Concept.objects.get(slug="spam"))
    assert shown(alice_client.get(URL)) == item


def test_undo_leaves_labels_changed_since_alone(alice_client, emails, alice):
    item = shown(alice_client.get(URL))
    alice_client.post(ACCEPT, form(item, "spam"), headers=HTMX)
    item.refresh_from_db()
    labels.set_label(item, Concept.objects.get(slug="ham"), 1, item.revision, alice)
    response = alice_client.post(UNDO, {"dataset": "emails"}, headers=HTMX)
    assert "changed since you saved them: nothing was undone" in response.content.decode()
    assert labels_of(item) == {"spam": Annotation.POSITIVE, "ham": Annotation.POSITIVE}


# Progress


def test_progress_counts_this_users_labels_of_today_in_this_dataset(
    alice_client, emails, spam, alice, bob
):
    a, b, c, d = Input.objects.filter(app=emails.app).order_by("pk")
    uploaded = add_inputs(emails.app, emails, ["From a file."])[0]
    other = Dataset.objects.create(app=emails.app, slug="other")
    elsewhere = add_inputs(emails.app, other, ["In another dataset."])[0]
    Annotation.objects.create(input=a, concept=spam, author=alice, by_hand=True)  # counts
    Annotation.objects.create(input=b, concept=spam, author=bob, by_hand=True)  # not hers
    yesterday = timezone.now() - timedelta(days=1, hours=1)
    Annotation.objects.create(input=c, concept=spam, author=alice, created=yesterday, by_hand=True)
    Annotation.objects.create(input=elsewhere, concept=spam, author=alice, by_hand=True)
    Annotation.objects.create(input=uploaded, concept=spam, author=alice)  # a file's, or the API's
    html = alice_client.get(URL).content.decode()
    assert "<b>1</b> labeled today" in html
    assert "<b>1</b> of 5 unlabeled left" in html
    assert shown(alice_client.get(URL)) == d


# Datasets and empty states


def test_the_dataset_is_chosen_with_a_select(alice_client, emails):
    other = Dataset.objects.create(app=emails.app, slug="archive")
    item = add_inputs(emails.app, other, ["Only in the archive."])[0]
    html = alice_client.get(URL).content.decode()
    assert '<select name="dataset" id="label-dataset">' in html
    assert shown(alice_client.get(URL + "?dataset=archive")) == item


@pytest.mark.parametrize(
    "setup, message",
    [
        ("no-dataset", "No datasets yet"),
        ("no-concept", "No concepts yet"),
        ("empty", "No inputs in this dataset"),
        ("all-labeled", "Every input is labeled"),
    ],
)
def test_it_says_when_there_is_nothing_to_label(alice_client, app, setup, message):
    if setup != "no-concept":
        spam = Concept.objects.create(app=app, slug="spam", name="Spam")
    if setup != "no-dataset":
        dataset = Dataset.objects.create(app=app, slug="emails")
    if setup == "all-labeled":
        item = add_inputs(app, dataset, ["Labeled already."])[0]
        Annotation.objects.create(input=item, concept=spam)
    response = alice_client.get(URL)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'name="input"' not in response.content.decode()


def test_the_dataset_page_and_the_sidebar_link_here(alice_client, emails):
    assert 'href="/apps/spam-filter/label-next/?dataset=emails"' in (
        alice_client.get("/apps/spam-filter/datasets/emails/").content.decode()
    )
    html = alice_client.get(URL).content.decode()
    assert re.search(r'<a href="/apps/spam-filter/label-next/" class="active">', html)


# Bad input and other people's objects


def test_another_users_app_or_dataset_gives_404_and_changes_nothing(client, emails, bob):
    item = Input.objects.filter(app=emails.app).first()
    client.force_login(bob)
    assert client.get(URL).status_code == 404
    for url in (ACCEPT, SKIP, UNDO):
        assert client.post(url, form(item, "spam")).status_code == 404
    bobs = App.objects.create(owner=bob, slug="spam-filter")  # same name, his own
    Concept.objects.create(app=bobs, slug="spam", name="Spam")
    assert client.get(URL + "?dataset=emails").status_code == 404
    assert client.post(ACCEPT, form(item, "spam")).status_code == 404
    # His own dataset with her input: refused in words.
    Dataset.objects.create(app=bobs, slug="emails")
    response = client.post(ACCEPT, form(item, "spam"), headers=HTMX)
    assert "That input is not in dataset emails: nothing was saved." in response.content.decode()
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"concepts": ["nope"]}, "There is no concept &#x27;nope&#x27; in this app"),
        ({"input": "999999"}, "That input is not in dataset emails"),
        ({"input": "x"}, "That input is not in dataset emails"),
        ({"revision": ""}, "The input&#x27;s revision is missing"),
        ({"revision": "7"}, "This input changed meanwhile"),
    ],
)
def test_bad_input_is_refused_with_a_message(alice_client, emails, change, message):
    item = shown(alice_client.get(URL))
    response = alice_client.post(ACCEPT, {**form(item, "spam"), **change}, headers=HTMX)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Annotation.objects.exists()


def test_an_input_of_another_dataset_is_refused(alice_client, emails):
    other = Dataset.objects.create(app=emails.app, slug="other")
    item = add_inputs(emails.app, other, ["Not in emails."])[0]
    response = alice_client.post(ACCEPT, form(item, "spam"), follow=True)
    assert "That input is not in dataset emails: nothing was saved." in response.content.decode()
    assert not Annotation.objects.exists()


def test_an_input_labeled_meanwhile_is_not_overwritten(alice_client, emails, ham, bob):
    item = shown(alice_client.get(URL))
    Annotation.objects.create(input=item, concept=ham, author=bob)  # in another tab
    response = alice_client.post(ACCEPT, form(item, "spam"), headers=HTMX)
    assert "This input was labeled meanwhile" in response.content.decode()
    assert labels_of(item) == {"ham": Annotation.POSITIVE}
    assert shown(response) != item


def test_it_only_answers_post_to_changes(alice_client, emails):
    assert alice_client.get(ACCEPT).status_code == 405
    assert alice_client.post(URL).status_code == 405


# Automatic retraining

RETRAIN = URL + "retrain/"
MORE = [f"Message number {i}: see the attached file about topic {i}." for i in range(20)]


def accept_next(client, *concepts: str) -> str:
    """Accept the input shown with `concepts`; returns the answer's HTML."""
    item = shown(client.get(URL))
    response = client.post(ACCEPT, form(item, *concepts), headers=HTMX)
    assert "Saved:" in response.content.decode()
    return response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_retraining_goes_through_a_new_dataset_version_and_never_stacks(alice_client, with_model):
    add_inputs(with_model.app, with_model, MORE)
    model = TrainableModel.objects.get(slug="detector")
    response = alice_client.post(RETRAIN, {"dataset": "emails", "retrain": "10"}, headers=HTMX)
    assert "Retraining after every 10 labels." in response.content.decode()
    for _ in range(9):
        accept_next(alice_client, "ham")
    assert with_model.versions.count() == 1
    html = accept_next(alice_client, "spam")  # the 10th
    assert "Retraining detector: bookmarking your labels as version 2." in html
    snapshot = with_model.versions.get(number=2)
    assert snapshot.status == DatasetVersion.Status.PENDING
    versions.snapshot(snapshot.pk)  # what the worker does with the queued job
    html = accept_next(alice_client, "ham")
    assert "Retraining detector: version 2 is queued." in html
    model.refresh_from_db()
    assert model.params["dataset_version_id"] == "2"
    queued = model.versions.get(number=2)
    assert queued.status == ModelVersion.Status.QUEUED
    assert queued.dataset_version == snapshot
    # While it waits for a worker, more labels start nothing else.
    for _ in range(10):
        html = accept_next(alice_client, "ham")
    assert "Model detector v2 is training on your earlier labels." in html
    assert with_model.versions.count() == 2
    assert model.versions.count() == 2


@pytest.mark.django_db(transaction=True)
def test_with_the_queue_down_retraining_says_so(alice_client, with_model, dead_broker):
    add_inputs(with_model.app, with_model, MORE)
    alice_client.post(RETRAIN, {"dataset": "emails", "retrain": "10"})
    for _ in range(9):
        accept_next(alice_client, "ham")
    html = accept_next(alice_client, "spam")
    assert "The job queue is unavailable right now" in html
    assert "Automatic retraining did not start." in html
    assert with_model.versions.get(number=2).status == DatasetVersion.Status.FAILURE
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retrains_and_the_suggestions_come_from_the_new_version(
    alice_client, with_model, celery_worker
):
    add_inputs(with_model.app, with_model, MORE)
    alice_client.post(RETRAIN, {"dataset": "emails", "retrain": "10"})
    for _ in range(10):
        accept_next(alice_client, "ham")
    snapshot = with_model.versions.get(number=2)
    assert wait_for(lambda: DatasetVersion.objects.get(pk=snapshot.pk).is_finished)
    accept_next(alice_client, "ham")
    model = TrainableModel.objects.get(slug="detector")
    assert wait_for(lambda: model.versions.get(number=2).is_finished, timeout=60)
    assert model.versions.get(number=2).status == ModelVersion.Status.TRAINED
    assert "Model <b>detector</b> v2 is least sure" in alice_client.get(URL).content.decode()


@pytest.mark.parametrize("value", ["7", "x", ""])
def test_an_unknown_retraining_setting_is_refused(alice_client, with_model, value):
    response = alice_client.post(RETRAIN, {"dataset": "emails", "retrain": value}, follow=True)
    assert "Choose off, 10, 25 or 50 labels." in response.content.decode()
    assert '<option value="0" selected>off</option>' in response.content.decode()


def test_a_step_embeds_only_a_few_texts_still_waiting_for_their_embedding(alice_client, with_model):
    add_inputs(with_model.app, with_model, MORE + [f"Extra {i}" for i in range(20)])
    hashes = list(labeling.unlabeled(with_model).values_list("text_hash", flat=True))
    assert len(hashes) == 44 and not Embedding.objects.filter(text_hash__in=hashes).exists()
    shown(alice_client.get(URL))
    embedded = Embedding.objects.filter(text_hash__in=hashes).count()
    assert embedded == labeling.EMBED_NOW  # not all 44 in one request


def test_two_positives_for_an_exclusive_model_need_a_deliberate_tick(alice_client, with_model):
    ModelVersion.objects.filter(model__slug="detector").update(
        params={**ModelVersion.objects.get().params, "concepts_mutually_exclusive": True}
    )
    page = alice_client.get(URL).content.decode()
    assert '<fieldset class="label-choices" data-exclusive>' in page
    assert "Several concepts on purpose" in page
    item = shown(alice_client.get(URL))
    response = alice_client.post(ACCEPT, form(item, "spam", "ham"), headers=HTMX)
    assert "concepts are mutually exclusive: choose one of spam, ham" in response.content.decode()
    assert labels_of(item) == {}
    item.refresh_from_db()
    deliberate = {**form(item, "spam", "ham"), "several": "1"}
    response = alice_client.post(ACCEPT, deliberate, headers=HTMX)
    assert labels_of(item) == {"spam": Annotation.POSITIVE, "ham": Annotation.POSITIVE}


def test_a_one_vs_rest_model_takes_several_concepts_as_they_come(alice_client, with_model):
    assert "data-exclusive" not in alice_client.get(URL).content.decode()
    item = shown(alice_client.get(URL))
    alice_client.post(ACCEPT, form(item, "spam", "ham"), headers=HTMX)
    assert labels_of(item) == {"spam": Annotation.POSITIVE, "ham": Annotation.POSITIVE}
