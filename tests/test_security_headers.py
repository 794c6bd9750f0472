"""Security headers on pages, fragments and the API, under development and production settings."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from portal.models import App

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
HOST = "portal.example.com"

# Run under production settings (DJANGO_DEBUG=False) in a fresh interpreter: prints the
# status, headers and cookies of a few responses as JSON.
PRODUCTION_PROBE = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client

call_command("collectstatic", interactive=False, verbosity=0)
client = Client(HTTP_HOST=sys.argv[1])
out = {}
for name, path, secure in [
    ("login", "/accounts/login/", True),
    ("api", "/api/v1/apps", True),
    ("plain", "/accounts/login/", False),
    ("stylesheet", static("portal/portal.css"), True),
]:
    response = client.get(path, secure=secure)
    out[name] = {
        "status": response.status_code,
        "headers": dict(response.headers),
        "cookies": {k: dict(v.items()) for k, v in response.cookies.items()},
    }
print(json.dumps(out))
"""


def policy(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: [sources]}."""
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_safe_headers(headers) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    csp = policy(headers["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["style-src-elem"] == ["'self'"]
    assert "'unsafe-eval'" not in headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path",
    ["/accounts/login/", "/", "/apps/spam-filter/concepts/", "/api/v1/apps", "/api/v1/docs"],
)
def test_plain_http_responses_carry_the_headers(alice_client, alice, path):
    App.objects.create(owner=alice, slug="spam-filter")
    response = alice_client.get(path)
    assert response.status_code == 200
    assert_safe_headers(response.headers)
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP


def test_htmx_fragments_and_errors_carry_the_headers(alice_client, alice):
    App.objects.create(owner=alice, slug="spam-filter")
    fragment = alice_client.get("/apps/spam-filter/concepts/", headers={"HX-Request": "true"})
    assert_safe_headers(fragment.headers)
    missing = alice_client.get("/apps/nothing-here/")
    assert missing.status_code == 404
    assert_safe_headers(missing.headers)


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_"))}
    env = {
        **clean,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "PORTAL_HTTPS": "True",
        "PORTAL_DATA_DIR": str(tmp_path_factory.mktemp("production")),
    }
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE, HOST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_production_pages_carry_the_headers_and_hsts(production):
    login = production["login"]
    assert login["status"] == 200
    headers = login["headers"]
    assert_safe_headers(headers)
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "upgrade-insecure-requests" in policy(headers["Content-Security-Policy"])


def test_production_cookies_are_secure(production):
    csrf = production["login"]["cookies"]["csrftoken"]
    assert csrf["secure"] is True
    assert csrf["samesite"] == "Lax"


def test_production_api_carries_the_headers(production):
    api = production["api"]
    assert api["status"] == 401
    assert_safe_headers(api["headers"])
    assert "Strict-Transport-Security" in api["headers"]


def test_production_serves_the_static_files_itself(production):
    stylesheet = production["stylesheet"]
    assert stylesheet["status"] == 200
    assert stylesheet["headers"]["Content-Type"].startswith("text/css")
    assert "immutable" in stylesheet["headers"]["Cache-Control"]
    assert stylesheet["headers"]["X-Content-Type-Options"] == "nosniff"


def test_production_redirects_plain_http_to_https(production):
    plain = production["plain"]
    assert plain["status"] == 301
    assert plain["headers"]["Location"] == f"https://{HOST}/accounts/login/"


def test_production_session_cookie_is_secure_and_http_only():
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_SECURE)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "False",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "PORTAL_HTTPS": "True",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["True", "True", "True"], result.stderr
