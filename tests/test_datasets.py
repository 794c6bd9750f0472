import csv
import hashlib
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import versions
from portal.models import Annotation, App, Concept, Dataset, DatasetVersion, Input

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
URL = "/apps/spam-filter/datasets/"
PAGE = f"{URL}emails/"
Status = DatasetVersion.Status


def add_input(app, text, *, dataset=None, labels=(), external_id=""):
    item = Input.objects.create(
        app=app,
        text=text,
        text_hash=hashlib.sha256(text.encode()).hexdigest(),
        external_id=external_id,
    )
    if dataset is not None:
        dataset.inputs.add(item)
    for concept, value in labels:
        Annotation.objects.create(input=item, concept=concept, value=value)
    return item


def content(response) -> str:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return body.decode()


@pytest.fixture
def app(alice):
    return App.objects.create(owner=alice, slug="spam-filter")


@pytest.fixture
def dataset(app):
    dataset = Dataset.objects.create(app=app, slug="emails", description="Work mail")
    spam = Concept.objects.create(app=app, slug="spam", name="Spam")
    ham = Concept.objects.create(app=app, slug="ham", name="Ham")
    add_input(app, "Win a prize", dataset=dataset, labels=[(spam, 1), (ham, 0)], external_id="a1")
    add_input(app, '=HYPERLINK("http://evil")', dataset=dataset, labels=[(spam, 1)])
    add_input(app, "Lunch at noon?", dataset=dataset, labels=[(ham, 1)])
    add_input(app, "Unlabeled", dataset=dataset)
    add_input(app, "Elsewhere", labels=[(spam, 1)])
    return dataset


@pytest.fixture
def ready(dataset):
    version = DatasetVersion.objects.create(dataset=dataset, number=1)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    return version


@pytest.fixture
def pending(dataset, ready):
    return DatasetVersion.objects.create(dataset=dataset, number=2)


def test_it_lists_datasets_with_counts(alice_client, app, dataset, ready):
    Dataset.objects.create(app=app, slug="empty")
    response = alice_client.get(URL)
    assert response.status_code == 200
    assert b'href="/apps/spam-filter/datasets/" class="active"' in response.content
    html = response.content.decode()
    row = html.split('href="/apps/spam-filter/datasets/emails/"')[1].split("</tr>")[0]
    cells = [cell.split("</td>")[0] for cell in row.split('<td class="num">')[1:]]
    assert cells == ["4", "3", "1"]
    assert "Work mail" in row
    empty = html.split('href="/apps/spam-filter/datasets/empty/"')[1].split("</tr>")[0]
    assert [c.split("</td>")[0] for c in empty.split('<td class="num">')[1:]] == ["0", "0", "0"]


def test_the_list_does_not_query_per_dataset(alice_client, app, dataset, ready):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            alice_client.get(URL)
        return len(captured)

    one = queries()
    for n in range(4):
        other = Dataset.objects.create(app=app, slug=f"d{n}")
        add_input(app, f"text {n}", dataset=other)
        versions.create_version(other)
    assert queries() == one


def test_it_invites_a_newcomer_to_create_a_dataset(alice_client, app):
    response = alice_client.get(URL)
    assert b"Create your first dataset" in response.content
    assert b'data-dialog="create-dataset-dialog"' in response.content
    assert b'<dialog id="create-dataset-dialog"' in response.content


def test_the_create_form_is_a_fragment_over_htmx(alice_client, app):
    response = alice_client.get(f"{URL}new/", headers=HX)
    assert b"<html" not in response.content
    assert b'id="create-dataset-form"' in response.content


def test_the_create_form_is_a_page_without_javascript(alice_client, app):
    response = alice_client.get(f"{URL}new/")
    assert b"<html" in response.content
    assert response.content.count(b'id="create-dataset-form"') == 1
    assert b"<dialog" not in response.content


def test_it_creates_a_dataset(alice_client, app):
    response = alice_client.post(f"{URL}new/", {"slug": "emails", "description": "Mail"})
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert Dataset.objects.get(app=app, slug="emails").description == "Mail"


def test_it_creates_a_dataset_over_htmx(alice_client, app):
    response = alice_client.post(f"{URL}new/", {"slug": "emails"}, headers=HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == PAGE


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("has space", "Letters, digits"),
        ("-leading", "Letters, digits"),
        ("", "This field is required"),
        ("new", "“new” is reserved"),
        ("EMAILS", "This app already has a dataset called “EMAILS”."),
    ],
)
@pytest.mark.parametrize("headers", [{}, HX])
def test_it_rejects_bad_dataset_ids(alice_client, dataset, slug, message, headers):
    response = alice_client.post(f"{URL}new/", {"slug": slug}, headers=headers)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert (b"<html" in response.content) == (not headers)
    assert list(Dataset.objects.values_list("slug", flat=True)) == ["emails"]


def test_the_dataset_page_shows_counts_and_versions(alice_client, dataset, pending):
    response = alice_client.get(PAGE)
    assert response.status_code == 200
    html = " ".join(response.content.decode().split())
    assert "Work mail" in html
    assert '<div class="value">4</div><div class="name">Inputs</div>' in html
    assert '<div class="value">3</div><div class="name">Labeled inputs</div>' in html
    # Per concept: spam 2 positive (the input outside the dataset does not count), ham 1/1.
    row = '<td class="mono">{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td>'
    assert row.format("spam", "Spam", 2, 0) in html
    assert row.format("ham", "Ham", 1, 1) in html
    assert "New version" in html
    assert '<td class="mono">v1</td>' in html
    assert '<td class="mono">v2</td>' in html
    assert "READY" in html
    assert "PENDING" in html
    assert f"{PAGE}versions/1/export.csv" in html
    assert f"{PAGE}versions/2/export.csv" not in html


def test_an_unfinished_version_polls_its_status(alice_client, pending):
    response = alice_client.get(PAGE)
    row = response.content.decode().split('id="version-2"')[1].split("</tr>")[0]
    assert f'hx-get="{PAGE}versions/2/status/"' in row
    assert 'hx-trigger="every 1s"' in row
    ready_row = response.content.decode().split('id="version-1"')[1].split("</tr>")[0]
    assert "hx-trigger" not in ready_row.split(">")[0]


def test_the_status_fragment_polls_until_the_version_is_finished(alice_client, pending):
    url = f"{PAGE}versions/2/status/"
    response = alice_client.get(url, headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'hx-trigger="every 1s"' in response.content
    assert b"PENDING" in response.content
    versions.snapshot(pending.pk)
    response = alice_client.get(url, headers=HX)
    assert b"hx-trigger" not in response.content
    assert b"READY" in response.content
    assert b'<td class="num">4</td>' in response.content
    assert b"export.jsonl" in response.content


def test_the_status_url_is_the_dataset_page_without_javascript(alice_client, pending):
    response = alice_client.get(f"{PAGE}versions/2/status/")
    assert response.status_code == 200
    assert b"<html" in response.content
    assert b"New version" in response.content


def test_a_failed_version_shows_why(alice_client, dataset):
    DatasetVersion.objects.create(
        dataset=dataset, number=1, status=Status.FAILURE, error="the job queue was unavailable"
    )
    response = alice_client.get(f"{PAGE}versions/1/status/", headers=HX)
    assert b"FAILURE" in response.content
    assert b"the job queue was unavailable" in response.content
    assert b"hx-trigger" not in response.content


def test_new_version_adds_a_pending_version(alice_client, dataset, ready):
    response = alice_client.post(f"{PAGE}versions/new/")
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert DatasetVersion.objects.get(dataset=dataset, number=2).status == Status.PENDING


def test_new_version_over_htmx_returns_the_versions(alice_client, dataset, ready):
    response = alice_client.post(f"{PAGE}versions/new/", headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="versions">')
    assert 'id="version-2"' in html
    assert 'id="version-1"' in html
    assert 'hx-trigger="every 1s"' in html
    assert "Version v2 is being made" in html
    # The page's version counter follows at once.
    counter = html.split('<div class="stat" id="version-count" hx-swap-oob="true">')[1]
    assert counter.startswith('<div class="value">2</div>')


@pytest.mark.parametrize("headers", [HX, {}])
def test_new_version_of_a_dataset_without_inputs_is_refused(alice_client, app, headers):
    Dataset.objects.create(app=app, slug="empty")
    response = alice_client.post(f"/apps/{app.slug}/datasets/empty/versions/new/", headers=headers)
    assert not DatasetVersion.objects.exists()
    if headers:
        assert "Dataset empty has no inputs yet" in response.content.decode()
    else:
        page = alice_client.get(response["Location"]).content.decode()
        assert "Dataset empty has no inputs yet" in page


def test_the_dataset_page_offers_upload_inputs_into_it(alice_client, dataset):
    page = alice_client.get(PAGE).content.decode()
    link = 'href="/apps/spam-filter/inputs/upload/?dataset=emails" data-dialog="upload-dialog">'
    assert f"{link}Upload inputs</a>" in page
    assert 'hx-get="/apps/spam-filter/inputs/upload/?dataset=emails"' in page


def test_new_version_needs_a_post(alice_client, dataset):
    assert alice_client.get(f"{PAGE}versions/new/").status_code == 405
    assert not DatasetVersion.objects.exists()


def test_it_exports_csv(alice_client, ready):
    response = alice_client.get(f"{PAGE}versions/1/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="spam-filter_emails_v1.csv"'
    rows = list(csv.DictReader(io.StringIO(content(response))))
    by_text = {row["input"]: row for row in rows}
    assert len(rows) == 4
    assert by_text["Win a prize"]["inputid"] == "a1"
    assert by_text["Win a prize"]["concepts"] == "spam"
    assert by_text["Win a prize"]["negative_concepts"] == "ham"
    assert by_text["Unlabeled"]["concepts"] == ""
    # A formula is escaped so that a spreadsheet shows it as text.
    assert '\'=HYPERLINK("http://evil")' in by_text
    assert '=HYPERLINK("http://evil")' not in by_text


def test_it_exports_jsonl(alice_client, ready):
    response = alice_client.get(f"{PAGE}versions/1/export.jsonl")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="spam-filter_emails_v1.jsonl"'
    records = [json.loads(line) for line in content(response).splitlines()]
    assert len(records) == 4
    first = next(r for r in records if r["text"] == "Win a prize")
    assert first == {
        "id": "a1",
        "text": "Win a prize",
        "concepts": ["spam"],
        "negative_concepts": ["ham"],
        "metadata": {},
    }
    assert any(r["text"] == '=HYPERLINK("http://evil")' for r in records)


@pytest.mark.parametrize("url", [f"{PAGE}versions/2/export.csv", f"{PAGE}versions/1/export.xlsx"])
def test_only_ready_versions_export_as_csv_or_jsonl(alice_client, pending, url):
    assert alice_client.get(url).status_code == 404


def test_it_deletes_a_dataset_but_keeps_its_inputs(alice_client, app, dataset, ready):
    response = alice_client.post(f"{PAGE}delete/")
    assert response["Location"] == URL
    assert not Dataset.objects.exists()
    assert not DatasetVersion.objects.exists()
    assert Input.objects.filter(app=app).count() == 5
    assert Annotation.objects.count() == 5
    assert "its inputs stay in the app" in content(alice_client.get(URL))


def test_the_delete_form_says_the_inputs_stay(alice_client, ready):
    html = " ".join(content(alice_client.get(PAGE)).split())
    assert "This deletes 1 dataset version. Its 4 inputs and their labels stay in the app" in html


def all_urls():
    return [
        ("get", URL),
        ("get", f"{URL}new/"),
        ("post", f"{URL}new/"),
        ("get", PAGE),
        ("post", f"{PAGE}versions/new/"),
        ("get", f"{PAGE}versions/1/status/"),
        ("get", f"{PAGE}versions/1/export.csv"),
        ("get", f"{PAGE}versions/1/export.jsonl"),
        ("post", f"{PAGE}delete/"),  # last: the owner test goes through them in order
    ]


@pytest.mark.parametrize(("method", "url"), all_urls())
@pytest.mark.parametrize("headers", [{}, HX])
@pytest.mark.parametrize("user", ["bob", "charlie"])
def test_it_checks_ownership(client, request, ready, user, method, url, headers):
    client.force_login(request.getfixturevalue(user))
    data = {"slug": "intruder", "description": "mine now"}
    response = getattr(client, method)(url, data, headers=headers)
    assert response.status_code == 404
    assert list(Dataset.objects.values_list("slug", "description")) == [("emails", "Work mail")]
    assert list(DatasetVersion.objects.values_list("number", flat=True)) == [1]
    assert Input.objects.count() == 5


def test_the_owner_reaches_every_url(alice_client, ready):
    for method, url in all_urls():
        response = getattr(alice_client, method)(url, {"slug": "another"})
        assert response.status_code in (200, 302), url


@pytest.mark.parametrize(("method", "url"), all_urls())
def test_anonymous_users_are_sent_to_sign_in(client, ready, method, url):
    response = getattr(client, method)(url, {"slug": "intruder"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert Dataset.objects.count() == 1
    assert DatasetVersion.objects.count() == 1
