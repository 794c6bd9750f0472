"""Hostile uploads, on the page and over the API: clear errors, nothing imported, no 500s,
memory bounded."""

import json
import time
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portal.csv_io import MAX_METADATA_DEPTH, MAX_UPLOAD_CONCEPTS, CsvImportError, parse_csv
from portal.models import ApiToken, App, Concept, Dataset, ImportJob, Input

pytestmark = pytest.mark.django_db

PAGE = "/apps/spam-filter/inputs/upload/"
API = "/api/v1/apps/spam-filter/datasets/emails/inputs"
MB = 2**20


@pytest.fixture
def app(alice):
    app = App.objects.create(owner=alice, slug="spam-filter")
    Dataset.objects.create(app=app, slug="emails")
    return app


@pytest.fixture
def auth(alice) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {ApiToken.issue(alice, 't')[1]}"}


def csv_file(content: str | bytes) -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile("inputs.csv", data, content_type="text/csv")


def upload_page(client: Client, content: str | bytes) -> str:
    response = client.post(PAGE, {"mode": "csv", "no_dataset": "1", "file": csv_file(content)})
    assert response.status_code == 200
    return response.text


def upload_api(client: Client, auth: dict, content: str | bytes) -> tuple[int, str]:
    response = client.post(API, {"file": csv_file(content)}, **auth)
    return response.status_code, response.json().get("error", "")


def post_json(client: Client, auth: dict, body: str) -> tuple[int, str]:
    response = client.post(API, body, content_type="application/json", **auth)
    return response.status_code, response.json().get("error", "")


def assert_nothing_imported() -> None:
    assert not Input.objects.exists()
    assert not Concept.objects.exists()


def nested(depth: int) -> dict:
    value: object = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return {"a": value}


def nested_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# Size


def test_an_oversize_file_is_refused_before_it_is_read(app, alice, auth, settings):
    settings.PORTAL_MAX_UPLOAD_BYTES = MB
    content = "text\n" + "a spam text\n" * 120_000
    # Without a CSRF token: the check that would read the body comes after the size check.
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = upload_page(client, content)
    assert "Nothing was uploaded: the file is larger than the 1 MB limit." in page

    status, message = upload_api(Client(), auth, content)
    assert (status, message) == (413, "the upload is larger than the 1 MB limit")
    assert not ImportJob.objects.exists()
    assert_nothing_imported()


def test_a_file_just_over_the_limit_is_refused_too(alice_client, app, auth, client, settings):
    settings.PORTAL_MAX_UPLOAD_BYTES = 1000
    content = "text\n" + "x" * 1100
    assert "larger than the" in upload_page(alice_client, content)
    assert upload_api(client, auth, content)[0] == 413
    assert_nothing_imported()


def test_a_10_mb_cell_is_refused(alice_client, app, auth, client):
    content = 'text,label\n"' + "x" * (10 * MB) + '",spam\n'
    message = "row 2: a cell is longer than 200,000 characters; is a closing quote missing?"
    assert message in upload_page(alice_client, content)
    status, error = upload_api(client, auth, content)
    assert status == 400 and message in error
    assert_nothing_imported()


def test_10_mb_of_typed_text_is_refused(alice_client, app):
    response = alice_client.post(
        PAGE, {"mode": "text", "no_dataset": "1", "text": "x" * (10 * MB + 1)}
    )
    assert response.status_code == 200
    assert "the typed text is larger than 10 MB. Upload it as a .csv file instead." in response.text
    response = alice_client.post(
        PAGE, {"mode": "text", "no_dataset": "1", "text": "x" * (10 * MB - 1000)}
    )
    assert "A line is longer than 100,000 characters." in response.text
    assert_nothing_imported()


def test_a_10_mb_json_text_is_refused(app, auth, client):
    body = json.dumps({"inputs": [{"text": "x" * (10 * MB)}]})
    assert post_json(client, auth, body) == (413, "the upload is larger than the 50 MB limit")
    body = json.dumps({"inputs": [{"text": "x" * (9 * MB)}]})
    status, message = post_json(client, auth, body)
    assert status == 400 and "the limit is 100000" in message
    assert_nothing_imported()


# Deeply nested metadata


def test_deeply_nested_csv_metadata_is_refused(alice_client, app, auth, client):
    cell = nested_text(10_000).replace('"', '""')
    content = f'input,metadata\nhello,"{cell}"\n'
    message = f"row 2: metadata is not valid JSON (nested deeper than {MAX_METADATA_DEPTH} levels)"
    assert message in upload_page(alice_client, content)
    status, error = upload_api(client, auth, content)
    assert status == 400 and message in error
    assert_nothing_imported()


def test_deeply_nested_json_metadata_is_refused(app, auth, client):
    body = '{"inputs": [{"text": "hello", "metadata": ' + nested_text(10_000) + "}]}"
    status, message = post_json(client, auth, body)
    assert status == 400
    assert message == "the body is nested too deeply: metadata may nest 20 levels"
    assert_nothing_imported()


def test_metadata_nested_up_to_the_limit_is_stored(alice_client, app, auth, client):
    metadata = nested(MAX_METADATA_DEPTH)
    body = json.dumps({"inputs": [{"text": "from the API", "metadata": metadata}]})
    assert post_json(client, auth, body)[0] == 201
    cell = json.dumps(metadata).replace('"', '""')
    content = f'input,metadata\nfrom a file,"{cell}"\n'
    assert (
        alice_client.post(
            PAGE, {"mode": "csv", "no_dataset": "1", "file": csv_file(content)}
        ).status_code
        == 302
    )
    assert [item.metadata for item in Input.objects.order_by("text")] == [metadata, metadata]


# NUL characters


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"text,label\nnul \x00 here,spam\n", "row 2: a cell contains a NUL character"),
        (b"input,inputid\nhello,id\x00\n", "row 2: a cell contains a NUL character"),
        (
            b'input,metadata\nhello,"{""a"": ""\\u0000""}"\n',
            "row 2: metadata is not valid JSON (it contains a NUL character",
        ),
    ],
)
def test_nul_characters_in_a_csv_are_refused(alice_client, app, auth, client, content, message):
    assert message in upload_page(alice_client, content)
    status, error = upload_api(client, auth, content)
    assert status == 400 and message in error
    assert_nothing_imported()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"text": "nul \u0000 here"}, "the text contains a NUL character"),
        ({"text": "hello", "id": "a\u0000b"}, "inputs.0.id: contains a NUL character"),
        ({"text": "hello", "metadata": {"k": "\u0000"}}, "inputs.0.metadata: contains a NUL"),
        ({"text": "hello", "metadata": {"\u0000": 1}}, "inputs.0.metadata: contains a NUL"),
    ],
)
def test_nul_characters_in_json_are_refused(app, auth, client, item, message):
    status, error = post_json(client, auth, json.dumps({"inputs": [item]}))
    assert status == 400 and message in error
    assert_nothing_imported()


# 200,000 distinct concepts


def too_many_concepts_csv() -> bytes:
    return ("text,label\n" + "".join(f"text {n},c{n}\n" for n in range(200_000))).encode()


def peak_memory(call) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_200000_concepts_in_a_csv_are_refused_in_bounded_memory(
    alice_client, app, auth, client, settings
):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 1_000_000  # parsed in the request, measured here
    content = too_many_concepts_csv()
    message = f"the upload names more than {MAX_UPLOAD_CONCEPTS:,} different concepts"
    # A small upload first: what the first request of a process loads is not measured.
    upload_page(alice_client, "text\n")
    upload_api(client, auth, "text\n")
    page, peak = peak_memory(lambda: upload_page(alice_client, content))
    assert f"row {MAX_UPLOAD_CONCEPTS + 2}: {message}" in page
    # The test client's copy of the request, the upload and the stored job hold the file a
    # few times over (most on PostgreSQL, whose driver copies the bytes it sends).
    assert peak < 12 * len(content), f"peak {peak / MB:.1f} MB, file {len(content) / MB:.1f} MB"
    (status, error), peak = peak_memory(lambda: upload_api(client, auth, content))
    assert status == 400 and message in error
    assert peak < 12 * len(content), f"peak {peak / MB:.1f} MB, file {len(content) / MB:.1f} MB"
    assert_nothing_imported()


def test_the_parse_of_200000_concepts_stops_early(app):
    content = too_many_concepts_csv()

    def parse() -> str:
        with pytest.raises(CsvImportError) as error:
            parse_csv(content)
        return str(error.value)

    message, peak = peak_memory(parse)
    assert "more than 1,000 different concepts" in message
    # The decoded text, about the file's size, and the rows up to the 1,001st concept.
    assert peak < 2 * len(content), f"peak {peak / MB:.1f} MB, file {len(content) / MB:.1f} MB"


def test_200000_concepts_in_json_are_refused_in_bounded_memory(app, auth, client):
    one_input = {"text": "hello", "concepts": [f"c{n}" for n in range(200_000)]}
    many_inputs = [{"text": f"text {n}", "concepts": [f"c{n}"]} for n in range(1001)]
    for inputs in ([one_input], many_inputs):
        body = json.dumps({"inputs": inputs})
        (status, error), peak = peak_memory(lambda body=body: post_json(client, auth, body))
        assert status == 400 and "more than 1,000 different concepts" in error
        assert peak < 40 * len(body) + 4 * MB, f"peak {peak / MB:.1f} MB, body {len(body)} bytes"
    assert_nothing_imported()


@pytest.mark.django_db(transaction=True)
def test_200000_concepts_fail_a_background_import(alice_client, app, celery_worker):
    content = too_many_concepts_csv()
    response = alice_client.post(
        PAGE, {"mode": "csv", "no_dataset": "1", "file": csv_file(content)}
    )
    assert response.status_code == 200
    job = ImportJob.objects.get()
    deadline = time.monotonic() + 60
    while not job.is_finished and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "more than 1,000 different concepts" in job.errors[0]
    assert_nothing_imported()


def test_relabeling_with_200000_unknown_concepts_names_a_few(app, auth, client):
    item = Input.objects.create(app=app, text="hello", text_hash="h")
    body = json.dumps({"concepts": [f"c{n}" for n in range(200_000)]})
    url = f"/api/v1/apps/spam-filter/inputs/{item.pk}"
    response = client.patch(url, body, content_type="application/json", **auth)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("unknown concepts: c0, c1, c10, c100, c1000,")
    assert "and 199,990 more; create them first" in message
    assert len(message) < 200
    assert not item.annotations.exists()
