"""CSRF: every route that changes state refuses a signed-in browser's request without the
token, and takes it in the `X-CSRFToken` header as htmx sends it (from `hx-headers` on
<body>). API calls with `Authorization: Token` and no cookies need no token: a page of
another site can't send that header.

The routes come from the URL resolver (see test_authz_matrix.py)."""

import html
import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.test_authz_matrix import (
    UNSAFE,
    Route,
    World,
    accepted_methods,
    alice_world,
    attempt,
    rolled_back,
    routes,
    send,
    signed_in,
)

# Views the middleware skips that check the token themselves: the upload refuses a body
# over the size limit before anything reads it, then checks CSRF (csrf_protect).
SELF_CHECKED = {"portal:inputs-upload"}
HX_HEADERS = re.compile(r"<body\b[^>]*\shx-headers='([^']*)'")


@pytest.fixture
def alice_objects(trained_model, alice) -> World:
    return alice_world(trained_model, alice)


def url_of(route: Route, world: World) -> str:
    # Parameters naming nothing of a user's (the admin's) take any value:
    # the CSRF check comes before the view.
    return route.url({**world.values(), "": "1"})


def browser(user: User) -> tuple[Client, str]:
    """A signed-in browser that checks CSRF like a real one, and the token its page holds."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    return client, page_token(client.get("/").content.decode())


def page_token(page: str, url: str = "/") -> str:
    """The token htmx sends with every request: `hx-headers` on <body>."""
    match = HX_HEADERS.search(page)
    assert match, f"{url}: the page's <body> has no hx-headers"
    return json.loads(html.unescape(match.group(1)))["x-csrftoken"]


def state_changing(world: World) -> list[tuple[Route, str]]:
    """(route, method) for every unsafe method each route answers (anything but 405)."""
    found = []
    for route in routes():
        client = signed_in(world.user)  # a fresh one: the probe may sign out
        for method in accepted_methods(client, route, world, url_of(route, world)):
            if method in UNSAFE:
                found.append((route, method))
    return found


def test_the_page_puts_the_token_where_htmx_sends_it(alice):
    client, token = browser(alice)
    assert len(token) == 64
    # htmx sends `hx-headers` as request headers: the same token in X-CSRFToken is accepted.
    response = client.post(
        "/account/api-tokens/", {"name": "laptop"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 302
    assert "tcp_" in client.get(response.url).content.decode()


def test_every_page_carries_the_token(alice_objects):
    """Every page built on base.html (not fragments, files or JSON) has the token on <body>."""
    client, _ = browser(alice_objects.user)
    pages = 0
    for route in routes():
        if route.is_api or route.is_admin:
            continue
        with rolled_back():
            response = send(client, route, "GET", url_of(route, alice_objects), alice_objects)
        if "base.html" in {t.name for t in response.templates}:
            page_token(response.content.decode(), response.request["PATH_INFO"])
            pages += 1
    assert pages >= 25


def test_every_state_changing_route_needs_the_token(alice_objects):
    """Pages, fragments and the API with the session cookie: 403 without the token (and
    nothing changes), anything but 403 with it."""
    problems, checked = [], 0
    for route, method in state_changing(alice_objects):
        url = url_of(route, alice_objects)
        client, _ = browser(alice_objects.user)
        response, changed = attempt(client, route, method, url, alice_objects)
        if response.status_code != 403 or changed:
            problems.append(f"{method} {url} without the token: {response.status_code} {changed}")
        client, token = browser(alice_objects.user)  # a fresh session: a request may sign out
        with rolled_back():
            response = send(
                client, route, method, url, alice_objects, headers={"X-CSRFToken": token}
            )
        if response.status_code in (403, 500):
            problems.append(f"{method} {url} with the token: {response.status_code}")
        checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 40


def test_only_reviewed_views_skip_the_middleware():
    """Django's CSRF middleware checks every view but the API's operations and the views in
    SELF_CHECKED, which check the token themselves (as the test above proves)."""
    exempt = {r.name for r in routes() if getattr(r.view, "csrf_exempt", False)}
    assert {name for name in exempt if not name.startswith("api:")} == SELF_CHECKED
    assert len(exempt) > 10


def test_the_api_with_a_token_needs_no_csrf_token(alice_objects):
    """`Authorization: Token`, no cookies: never refused for CSRF (nor for authentication)."""
    problems, checked = [], 0
    for route, method in state_changing(alice_objects):
        if not route.is_api or not getattr(route.view, "csrf_exempt", False):
            continue  # the schema and docs pages are Django views, left to the middleware
        client = Client(
            enforce_csrf_checks=True,
            raise_request_exception=False,
            HTTP_AUTHORIZATION=f"Token {alice_objects.key}",
        )
        with rolled_back():
            response = send(client, route, method, url_of(route, alice_objects), alice_objects)
        if response.status_code in (401, 403, 500):
            problems.append(f"{method} {route}: {response.status_code} {response.content[:200]}")
        checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 10


def test_the_api_with_a_session_and_no_token_is_refused(alice):
    client, _ = browser(alice)
    response = client.post("/api/v1/apps", {"id": "forged"}, content_type="application/json")
    assert response.status_code == 403
    assert set(response.json()) == {"error"}
    assert not alice.apps.exists()
