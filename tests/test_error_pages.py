"""Errors are pages in the portal's own look with a way back, never Django's technical
pages (DEBUG is False here, as in production)."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.test import Client
from django.urls import include, path

pytestmark = pytest.mark.django_db

TECHNICAL = ("URLconf", "Traceback", "Request Method", "DEBUG", "Django")


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the database said no")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("staff only")


# The portal's URLs and two views that fail, for the tests marked with this module.
urlpatterns = [
    path("crash/", crash),
    path("forbidden/", forbidden),
    path("", include("portal.urls")),
]
failing_views = pytest.mark.urls(__name__)


def assert_portal_page(response, status: int, template: str) -> str:
    assert response.status_code == status
    assert template in {t.name for t in response.templates}
    html = response.content.decode()
    assert "Textcat Portal" in html
    assert f'href="{static("portal/portal.css")}"' in html
    for text in TECHNICAL:
        assert text not in html
    return html


def test_an_unknown_url_is_the_404_page(client):
    html = assert_portal_page(client.get("/no/such/page/"), 404, "404.html")
    assert "Page not found" in html
    assert '<a class="button primary" href="/accounts/login/">Sign in</a>' in html


def test_a_signed_in_user_gets_the_404_page_in_the_shell(alice_client, app):
    html = assert_portal_page(alice_client.get("/no/such/page/"), 404, "404.html")
    assert '<a class="button primary" href="/">My apps</a>' in html
    assert 'aria-label="User menu"' in html
    assert '<a href="/apps/spam-filter/">spam-filter</a>' in html  # the app switcher


def test_an_object_that_is_not_yours_is_the_404_page(client, app, bob):
    client.force_login(bob)
    html = assert_portal_page(client.get("/apps/spam-filter/inputs/"), 404, "404.html")
    assert "spam-filter" not in html


def test_a_refused_htmx_request_gets_the_404_page_too(alice_client, app, spam):
    response = alice_client.post(
        "/apps/spam-filter/inputs/12345/label/",
        {"concept": "spam", "value": "1", "revision": "0"},
        headers={"HX-Request": "true"},
    )
    assert_portal_page(response, 404, "404.html")


@failing_views
def test_a_crash_is_the_500_page(alice, alice_client):
    alice_client.raise_request_exception = False
    html = assert_portal_page(alice_client.get("/crash/"), 500, "500.html")
    assert "Something went wrong" in html
    assert "the database said no" not in html
    assert '<a class="button primary" href="/">My apps</a>' in html


def test_the_500_page_needs_no_request_and_no_database():
    """Django renders it with an empty context; outside django_db, a query would fail."""
    html = render_to_string("500.html")
    assert "Textcat Portal" in html
    assert f'href="{static("portal/portal.css")}"' in html


def test_a_bad_host_is_the_400_page(client):
    # Refused before the session and authentication middleware have run.
    response = client.get("/", headers={"host": "evil.example"})
    html = assert_portal_page(response, 400, "400.html")
    assert "Bad request" in html


@failing_views
def test_a_permission_denied_is_the_403_page(alice_client):
    html = assert_portal_page(alice_client.get("/forbidden/"), 403, "403.html")
    assert "Not allowed" in html
    assert "staff only" not in html


def test_a_form_without_its_token_is_the_403_csrf_page(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/apps/new/", {"slug": "spam-filter"})
    html = assert_portal_page(response, 403, "403_csrf.html")
    assert "The form expired or cookies are blocked; reload the page and try again" in html
    assert "CSRF" not in html
