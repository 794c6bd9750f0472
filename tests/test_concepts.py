import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import Annotation, App, Concept, Input

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
URL = "/apps/spam-filter/concepts/"


def add_input(app, text, labels=()):
    item = Input.objects.create(
        app=app, text=text, text_hash=hashlib.sha256(text.encode()).hexdigest()
    )
    for concept, value in labels:
        Annotation.objects.create(input=item, concept=concept, value=value)
    return item


@pytest.fixture
def app(alice):
    return App.objects.create(owner=alice, slug="spam-filter")


@pytest.fixture
def spam(app):
    concept = Concept.objects.create(app=app, slug="spam", name="Spam")
    for n in range(12):
        add_input(app, f"text {n}", [(concept, Annotation.POSITIVE if n < 9 else 0)])
    return concept


def test_it_lists_concepts_with_their_counts(alice_client, spam):
    response = alice_client.get(URL)
    assert response.status_code == 200
    assert b"<html" in response.content
    assert b'href="/apps/spam-filter/concepts/" class="active"' in response.content
    row = response.content.split(b'id="concept-spam"')[1].split(b"</tr>")[0]
    assert b">Spam<" in row
    assert b'<td class="num">9</td>' in row
    assert b'<td class="num">3</td>' in row


def test_the_list_counts_in_one_query(alice_client, app, spam):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            alice_client.get(URL)
        return len(captured)

    one = queries()
    for n in range(5):
        concept = Concept.objects.create(app=app, slug=f"c{n}", name=f"C{n}")
        add_input(app, f"more {n}", [(concept, 1)])
    assert queries() == one


def test_it_shows_an_empty_list(alice_client, app):
    assert b"No concepts yet" in alice_client.get(URL).content


def test_it_creates_a_concept(alice_client, app):
    response = alice_client.post(URL, {"slug": "spam", "name": "Spam mail"})
    assert response.status_code == 302
    assert response["Location"] == URL
    assert Concept.objects.get(app=app, slug="spam").name == "Spam mail"


def test_the_name_defaults_to_the_id(alice_client, app):
    alice_client.post(URL, {"slug": "non-spam", "name": ""})
    assert Concept.objects.get(app=app, slug="non-spam").name == "non-spam"


def test_it_creates_a_concept_over_htmx(alice_client, app, spam):
    response = alice_client.post(URL, {"slug": "ham"}, headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'id="concept-section"' in response.content
    assert b'id="concept-ham"' in response.content
    assert b'id="concept-spam"' in response.content
    assert "Concept “ham” created." in response.content.decode()
    assert Concept.objects.filter(app=app, slug="ham").exists()


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("has space", "Letters, digits"),
        ("-leading", "Letters, digits"),
        ("x" * 65, "Letters, digits"),
        ("", "This field is required"),
        ("spam", "This app already has a concept called “spam”."),
        ("SPAM", "This app already has a concept called “SPAM”."),
    ],
)
@pytest.mark.parametrize("headers", [{}, HX])
def test_it_rejects_bad_concept_ids(alice_client, app, spam, slug, message, headers):
    response = alice_client.post(URL, {"slug": slug}, headers=headers)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert (b"<html" in response.content) == (not headers)
    assert list(Concept.objects.values_list("slug", flat=True)) == ["spam"]


def test_two_apps_may_have_the_same_concept_id(alice_client, spam, alice):
    App.objects.create(owner=alice, slug="other")
    alice_client.post("/apps/other/concepts/", {"slug": "spam"})
    assert Concept.objects.filter(slug="spam").count() == 2


def test_the_rename_row_is_a_fragment(alice_client, spam):
    response = alice_client.get(f"{URL}spam/rename/", headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'name="name"' in response.content
    assert b'value="Spam"' in response.content


def test_the_rename_row_works_without_javascript(alice_client, spam):
    response = alice_client.get(f"{URL}spam/rename/")
    assert b"<html" in response.content
    assert b'value="Spam"' in response.content
    assert b'hx-post="/apps/spam-filter/concepts/spam/rename/"' in response.content


def test_it_renames_a_concept_over_htmx(alice_client, spam):
    response = alice_client.post(f"{URL}spam/rename/", {"name": "Junk", "slug": "junk"}, headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"<td>Junk</td>" in response.content
    assert b'<td class="num">9</td>' in response.content
    spam.refresh_from_db()
    assert (spam.slug, spam.name) == ("spam", "Junk")


def test_it_renames_a_concept(alice_client, spam):
    response = alice_client.post(f"{URL}spam/rename/", {"name": "Junk"})
    assert response["Location"] == URL
    spam.refresh_from_db()
    assert spam.name == "Junk"


@pytest.mark.parametrize("headers", [{}, HX])
def test_a_name_is_required(alice_client, spam, headers):
    response = alice_client.post(f"{URL}spam/rename/", {"name": ""}, headers=headers)
    assert response.status_code == 200
    assert b"This field is required" in response.content
    spam.refresh_from_db()
    assert spam.name == "Spam"


def test_cancel_shows_the_row_again(alice_client, spam):
    response = alice_client.get(f"{URL}spam/", headers=HX)
    assert b"<html" not in response.content
    assert b"<td>Spam</td>" in response.content
    assert alice_client.get(f"{URL}spam/")["Location"] == URL


@pytest.mark.parametrize("headers", [{}, HX])
def test_delete_asks_first_and_says_how_many_labels_go(alice_client, spam, headers):
    response = alice_client.get(f"{URL}spam/delete/", headers=headers)
    assert response.status_code == 200
    text = " ".join(response.content.decode().split())
    assert 'Delete concept <b class="mono">spam</b> and its 12 labels?' in text
    assert (b"<html" in response.content) == (not headers)
    assert Concept.objects.filter(pk=spam.pk).exists()


def test_delete_of_an_unlabeled_concept_says_so(alice_client, app):
    Concept.objects.create(app=app, slug="ham", name="ham")
    response = alice_client.get(f"{URL}ham/delete/", headers=HX)
    assert b"It has no labels." in response.content


def test_it_deletes_a_concept_and_its_labels(alice_client, app, spam):
    response = alice_client.post(f"{URL}spam/delete/")
    assert response["Location"] == URL
    assert not Concept.objects.filter(pk=spam.pk).exists()
    assert not Annotation.objects.exists()
    assert Input.objects.filter(app=app).count() == 12
    page = alice_client.get(URL)
    assert "Concept “spam” and its labels were deleted." in page.content.decode()


def all_urls():
    return [
        ("get", URL),
        ("post", URL),
        ("get", f"{URL}spam/"),
        ("get", f"{URL}spam/rename/"),
        ("post", f"{URL}spam/rename/"),
        ("get", f"{URL}spam/delete/"),
        ("post", f"{URL}spam/delete/"),
    ]


@pytest.mark.parametrize(("method", "url"), all_urls())
@pytest.mark.parametrize("headers", [{}, HX])
@pytest.mark.parametrize("user", ["bob", "charlie"])
def test_it_checks_ownership(client, request, spam, user, method, url, headers):
    client.force_login(request.getfixturevalue(user))
    data = {"slug": "intruder", "name": "Mine now"}
    response = getattr(client, method)(url, data, headers=headers)
    assert response.status_code == 404
    spam.refresh_from_db()
    assert spam.name == "Spam"
    assert list(Concept.objects.values_list("slug", flat=True)) == ["spam"]
    assert Annotation.objects.count() == 12


@pytest.mark.parametrize(("method", "url"), all_urls())
def test_anonymous_users_are_sent_to_sign_in(client, spam, method, url):
    response = getattr(client, method)(url, {"name": "Mine now"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    spam.refresh_from_db()
    assert spam.name == "Spam"
    assert Annotation.objects.count() == 12
