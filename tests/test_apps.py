import pytest

from portal.models import App

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(alice):
    return App.objects.create(owner=alice, slug="spam-filter", description="Spam or not")


def test_home_lists_my_apps_only(alice_client, app, bob):
    App.objects.create(owner=bob, slug="bobs-app")
    response = alice_client.get("/")
    assert b"spam-filter" in response.content
    assert b"bobs-app" not in response.content
    assert b"Create an App" in response.content


def test_home_invites_a_newcomer_to_create_an_app(alice_client):
    assert b"Create your first app" in alice_client.get("/").content


def test_it_creates_an_app(alice_client, alice):
    response = alice_client.post(
        "/apps/new/", {"slug": "news", "description": "Topics", "input_type": "text"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/apps/news/"
    assert App.objects.get(owner=alice, slug="news").description == "Topics"


def test_it_creates_an_app_over_htmx(alice_client):
    response = alice_client.post(
        "/apps/new/", {"slug": "news", "input_type": "text"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/apps/news/"


def test_the_form_fragment_has_no_page_around_it(alice_client):
    response = alice_client.get("/apps/new/", headers={"HX-Request": "true"})
    assert b"<html" not in response.content
    assert b'id="create-app-form"' in response.content
    assert b"<html" in alice_client.get("/apps/new/").content


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("has space", b"Letters, digits"),
        ("-leading", b"Letters, digits"),
        ("", b"This field is required"),
        ("new", b"reserved"),
        ("SPAM-filter", b"You already have an app"),
    ],
)
def test_it_rejects_bad_app_ids(alice_client, app, slug, message):
    response = alice_client.post(
        "/apps/new/", {"slug": slug, "input_type": "text"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert message in response.content
    assert App.objects.count() == 1


def test_it_accepts_only_text_apps(alice_client):
    response = alice_client.post("/apps/new/", {"slug": "pics", "input_type": "image"})
    assert b"Only Text/Document apps are available" in response.content
    assert not App.objects.filter(slug="pics").exists()


def test_two_users_may_pick_the_same_app_id(alice_client, app, bob, client):
    client.force_login(bob)
    client.post("/apps/new/", {"slug": "spam-filter", "input_type": "text"})
    assert App.objects.filter(slug="spam-filter").count() == 2


def test_overview_shows_the_app_and_sidebar(alice_client, app):
    response = alice_client.get("/apps/spam-filter/")
    assert response.status_code == 200
    for label in (b"Overview", b"Settings", b"Spam or not", b"all-MiniLM-L6-v2"):
        assert label in response.content


def test_it_saves_settings(alice_client, app):
    response = alice_client.post("/apps/spam-filter/settings/", {"description": "New words"})
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.description == "New words"


def test_delete_needs_the_app_id_typed(alice_client, app):
    alice_client.post("/apps/spam-filter/delete/", {"confirm": "wrong"})
    assert App.objects.filter(pk=app.pk).exists()
    response = alice_client.post("/apps/spam-filter/delete/", {"confirm": "spam-filter"})
    assert response["Location"] == "/"
    assert not App.objects.filter(pk=app.pk).exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/apps/spam-filter/"),
        ("get", "/apps/spam-filter/settings/"),
        ("post", "/apps/spam-filter/settings/"),
        ("post", "/apps/spam-filter/delete/"),
    ],
)
def test_it_checks_ownership(client, app, charlie, method, url):
    client.force_login(charlie)
    data = {"confirm": "spam-filter", "description": "mine now"}
    response = getattr(client, method)(url, data)
    assert response.status_code == 404
    app.refresh_from_db()
    assert app.description == "Spam or not"


def test_anonymous_users_are_sent_to_sign_in(client, app):
    response = client.get("/apps/spam-filter/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
