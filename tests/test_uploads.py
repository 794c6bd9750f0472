import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portal.models import Annotation, App, Concept, Dataset, ImportJob, Input

pytestmark = pytest.mark.django_db

URL = "/apps/spam-filter/inputs/upload/"


@pytest.fixture
def app(alice):
    return App.objects.create(owner=alice, slug="spam-filter")


@pytest.fixture
def dataset(app):
    return Dataset.objects.create(app=app, slug="emails")


@pytest.fixture
def spam(app):
    return Concept.objects.create(app=app, slug="spam", name="spam")


def csv_file(content: str, name: str = "inputs.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


def labels(text: str) -> set[tuple[str, int]]:
    item = Input.objects.get(text=text)
    return set(item.annotations.values_list("concept__slug", "value"))


def test_the_window_renders(alice_client, app, dataset, spam):
    response = alice_client.get(URL)
    assert b"<html" in response.content
    for label in (b"Select or add datasets", b"Select or add concepts", b"Upload inputs", b".csv"):
        assert label in response.content
    fragment = alice_client.get(URL, headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content
    assert b'value="emails"' in fragment.content
    assert b'value="spam"' in fragment.content


def test_it_uploads_typed_texts_one_per_line(alice_client, app, dataset, spam):
    response = alice_client.post(
        URL,
        {
            "mode": "text",
            "text": "win a prize\n\n  free money now  \n",
            "datasets": ["emails"],
            "concepts": ["spam"],
        },
        headers={"HX-Request": "true"},
    )
    assert response["HX-Redirect"] == "/apps/spam-filter/inputs/"
    assert set(dataset.inputs.values_list("text", flat=True)) == {"win a prize", "free money now"}
    assert labels("win a prize") == {("spam", 1)}


def test_it_skips_duplicates(alice_client, app, dataset):
    data = {"mode": "text", "text": "hello\nhello\nthere", "datasets": ["emails"]}
    alice_client.post(URL, data)
    alice_client.post(URL, data)
    assert Input.objects.count() == 2
    other = Dataset.objects.create(app=app, slug="other")
    alice_client.post(URL, {"mode": "text", "text": "hello", "datasets": ["other"]})
    assert other.inputs.count() == 1
    assert Input.objects.count() == 3


def test_it_refuses_an_empty_text(alice_client, app):
    response = alice_client.post(URL, {"mode": "text", "no_dataset": "1", "text": "  \n "})
    assert b"Type at least one text" in response.content
    assert not Input.objects.exists()


def test_it_refuses_datasets_and_concepts_of_another_app(alice_client, app, bob):
    other = App.objects.create(owner=bob, slug="spam-filter")
    Dataset.objects.create(app=other, slug="bobs")
    response = alice_client.post(URL, {"mode": "text", "text": "hi", "datasets": ["bobs"]})
    assert b"Select a valid choice" in response.content
    assert not Input.objects.exists()


def test_it_imports_a_csv_in_the_sdk_format(alice_client, app, dataset):
    content = (
        'input,concepts,inputid,metadata\nwin cash,spam,a1,"{""src"": ""sms""}"\nhi mom,"ham",a2,\n'
    )
    response = alice_client.post(
        URL, {"mode": "csv", "file": csv_file(content), "datasets": ["emails"]}
    )
    assert response.status_code == 302
    assert dataset.inputs.count() == 2
    assert labels("win cash") == {("spam", 1)}
    assert Input.objects.get(external_id="a1").metadata == {"src": "sms"}
    assert set(Concept.objects.values_list("slug", flat=True)) == {"spam", "ham"}


def test_it_imports_the_portal_format_with_negatives(alice_client, app):
    content = (
        "input.id,input.data.text.raw,input.data.concepts[0].id,input.data.concepts[0].value\n"
        "x1,cheap pills,spam,1\nx2,lunch at noon?,spam,0\n"
    )
    alice_client.post(URL, {"mode": "csv", "no_dataset": "1", "file": csv_file(content)})
    assert labels("cheap pills") == {("spam", 1)}
    assert labels("lunch at noon?") == {("spam", 0)}


def test_chosen_concepts_apply_on_top_of_the_file(alice_client, app, spam):
    content = "text,label\nbuy now,promo\n"
    alice_client.post(
        URL, {"mode": "csv", "no_dataset": "1", "file": csv_file(content), "concepts": ["spam"]}
    )
    assert labels("buy now") == {("spam", 1), ("promo", 1)}


def test_a_bad_csv_imports_nothing_and_lists_the_errors(alice_client, app, dataset):
    content = "input,concepts\nfine text,spam\n,spam\nalso fine,bad concept!\n"
    response = alice_client.post(
        URL,
        {"mode": "csv", "file": csv_file(content), "datasets": ["emails"]},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert "Nothing was imported" in body
    assert "row 3: text is empty" in body
    assert "row 4:" in body
    assert not Input.objects.exists()
    assert not Concept.objects.exists()
    assert ImportJob.objects.get().status == ImportJob.Status.FAILED


def test_it_refuses_a_file_over_the_size_cap(alice_client, app, settings):
    settings.PORTAL_MAX_UPLOAD_BYTES = 10
    response = alice_client.post(
        URL, {"mode": "csv", "no_dataset": "1", "file": csv_file("text\n" + "x" * 20)}
    )
    assert b"larger than the" in response.content
    assert not ImportJob.objects.exists()


def test_it_needs_a_file(alice_client, app):
    response = alice_client.post(URL, {"mode": "csv", "no_dataset": "1"})
    assert b"Choose a .csv file" in response.content


def test_add_new_concept_creates_it_checked(alice_client, app):
    url = "/apps/spam-filter/inputs/upload/concepts/"
    response = alice_client.post(url, {"slug": "non-spam"}, headers={"HX-Request": "true"})
    assert b'value="non-spam" checked' in response.content
    assert Concept.objects.filter(app=app, slug="non-spam").exists()
    again = alice_client.post(url, {"slug": "NON-spam"}, headers={"HX-Request": "true"})
    assert b"already has a concept" in again.content
    bad = alice_client.post(url, {"slug": "not ok"}, headers={"HX-Request": "true"})
    assert b"Letters, digits" in bad.content
    assert Concept.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_large_file_imports_in_the_background(alice_client, app, settings, celery_worker):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 5
    rows = [f"message {i},{'spam' if i % 2 else 'ham'}\n" for i in range(40)]
    content = "text,label\n" + "".join(rows)
    response = alice_client.post(
        URL,
        {"mode": "csv", "no_dataset": "1", "file": csv_file(content)},
        headers={"HX-Request": "true"},
    )
    job = ImportJob.objects.get()
    assert b"every 1s" in response.content
    status_url = f"/apps/spam-filter/inputs/imports/{job.pk}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        time.sleep(0.2)
    assert job.status == ImportJob.Status.DONE, job.errors
    assert Input.objects.count() == 40
    assert Annotation.objects.filter(concept__slug="spam").count() == 20
    final = alice_client.get(status_url, headers={"HX-Request": "true"})
    assert b"Imported 40 inputs" in final.content
    assert b"every 1s" not in final.content
    assert b"<html" in alice_client.get(status_url).content


@pytest.mark.django_db(transaction=True)
def test_a_large_file_with_the_queue_down_says_so(alice_client, app, settings, dead_broker):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 1
    content = "text\none\ntwo\nthree\n"
    response = alice_client.post(URL, {"mode": "csv", "no_dataset": "1", "file": csv_file(content)})
    assert b"job queue is unavailable" in response.content
    assert not ImportJob.objects.exists()
    assert not Input.objects.exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", URL),
        ("post", URL),
        ("post", "/apps/spam-filter/inputs/upload/concepts/"),
        ("get", "/apps/spam-filter/inputs/imports/{job}/"),
        ("get", "/apps/spam-filter/inputs/embedding/"),
    ],
)
def test_it_checks_ownership(client, charlie, app, method, url):
    job = ImportJob.objects.create(app=app, filename="x.csv", data=b"")
    client.force_login(charlie)
    response = getattr(client, method)(
        url.format(job=job.pk), {"mode": "text", "no_dataset": "1", "text": "x", "slug": "evil"}
    )
    assert response.status_code == 404
    assert not Input.objects.exists()
    assert not Concept.objects.exists()


def test_the_embedding_status_polls_until_every_input_is_embedded(alice_client, app, embedder):
    from portal import embedding

    alice_client.post(URL, {"mode": "text", "no_dataset": "1", "text": "one\ntwo"})
    url = "/apps/spam-filter/inputs/embedding/"
    waiting = alice_client.get(url, headers={"HX-Request": "true"})
    assert b"0 of 2 inputs embedded" in waiting.content
    assert b"every 2s" in waiting.content
    embedding.embed_inputs(list(Input.objects.values_list("pk", flat=True)))
    done = alice_client.get(url, headers={"HX-Request": "true"})
    assert b"All 2 inputs are embedded" in done.content
    assert b"every 2s" not in done.content


def test_it_refuses_an_overlong_line(alice_client, app, settings):
    settings.PORTAL_MAX_TEXT_LENGTH = 10
    response = alice_client.post(
        URL, {"mode": "text", "no_dataset": "1", "text": "short\n" + "x" * 11}
    )
    assert b"A line is longer than 10 characters" in response.content
    assert not Input.objects.exists()


def checked_datasets(response) -> list[str]:
    return re.findall(r'name="datasets" value="([\w-]+)" checked', response.content.decode())


def test_the_apps_only_dataset_or_the_one_asked_for_is_chosen(alice_client, app, dataset):
    assert checked_datasets(alice_client.get(URL)) == ["emails"]
    Dataset.objects.create(app=app, slug="other")
    assert checked_datasets(alice_client.get(URL)) == []
    assert checked_datasets(alice_client.get(URL, {"dataset": "other"})) == ["other"]
    assert checked_datasets(alice_client.get(URL, {"dataset": "nope"})) == []


def test_an_upload_into_no_dataset_asks_first(alice_client, app, dataset):
    response = alice_client.post(URL, {"mode": "text", "text": "hello"})
    assert response.status_code == 200
    assert "inputs in no dataset are in no version" in response.content.decode()
    assert not Input.objects.exists()
    alice_client.post(URL, {"mode": "text", "text": "hello", "no_dataset": "1"})
    assert Input.objects.get().datasets.count() == 0


def test_a_label_mapping_renames_the_files_labels(alice_client, app, dataset):
    content = (
        "text,label\nwin cash now,spam\nlunch at noon?,ham\nsee you,ham\nrefund?,card_payment?\n"
    )
    mapping = '{"ham": "not-spam", "card_payment?": "card-payment"}'
    data = {"mode": "csv", "file": csv_file(content), "datasets": ["emails"], "label_map": mapping}
    assert alice_client.post(URL, data).status_code == 302
    assert labels("lunch at noon?") == {("not-spam", 1)}
    assert labels("win cash now") == {("spam", 1)}
    assert labels("refund?") == {("card-payment", 1)}
    assert not Concept.objects.filter(slug="ham").exists()
    assert ImportJob.objects.get().label_map == {"ham": "not-spam", "card_payment?": "card-payment"}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ('{"ham": "not spam"}', "“ham” → “not spam”: “not spam” is not a valid concept ID"),
        ("[1, 2]", "The label mapping is not valid"),
        ("{oops", "The label mapping is not valid"),
    ],
)
def test_a_bad_label_mapping_imports_nothing(alice_client, app, dataset, mapping, message):
    content = "text,label\nlunch at noon?,ham\n"
    data = {"mode": "csv", "file": csv_file(content), "datasets": ["emails"], "label_map": mapping}
    response = alice_client.post(URL, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Input.objects.exists() and not ImportJob.objects.exists()


def test_the_csv_panel_takes_a_dropped_file_and_previews_it(alice_client, app, dataset):
    page = alice_client.get(URL).content.decode()
    assert '<div class="dropzone" data-dropzone>' in page
    assert 'id="label-map"' in page and 'id="csv-preview"' in page
