"""The user menu → API tokens: create a token, copy its key, use it, revoke it."""

import json
import urllib.error
import urllib.request

import pytest

from portal.models import ApiToken
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def api_status(url: str, key: str) -> int:
    request = urllib.request.Request(
        f"{url}/api/v1/apps", headers={"Authorization": f"Token {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            json.load(response)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_user_creates_and_revokes_a_token(live_server, page, alice, screenshot):
    ApiToken.issue(alice, "old laptop")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("User menu").click()
    page.get_by_role("link", name="API tokens").click()
    page.get_by_role("heading", name="API tokens").wait_for()
    screenshot(page, "tokens-1-list")

    page.get_by_role("button", name="Create token").click()  # no name: the browser refuses
    assert ApiToken.objects.count() == 1
    page.get_by_label("Name", exact=True).fill("nightly job")
    page.get_by_role("button", name="Create token").click()
    page.get_by_role("heading", name="Token “nightly job” created").wait_for()
    key = page.get_by_label("Key").input_value()
    assert key.startswith("tcp_")
    assert key in page.locator("#curl-example").inner_text()
    page.locator("#new-key").get_by_role("button", name="Copy").first.click()
    page.locator("#new-key").get_by_role("button", name="Copied").wait_for()
    screenshot(page, "tokens-2-created")
    assert api_status(live_server.url, key) == 200

    page.reload()  # neither shows the key again nor makes another token
    assert key not in page.content()
    assert ApiToken.objects.count() == 2
    row = page.locator("tr", has_text="nightly job")
    row.get_by_role("link", name="Revoke").click()
    page.get_by_text("Revoke token nightly job").wait_for()
    screenshot(page, "tokens-3-revoke")
    page.get_by_role("button", name="Revoke token").click()
    page.get_by_text("Token “nightly job” revoked").wait_for()
    assert page.locator("tr", has_text="nightly job").get_by_text("Revoked").is_visible()
    assert page.locator("tr", has_text="old laptop").get_by_text("Active").is_visible()
    screenshot(page, "tokens-4-revoked")
    assert api_status(live_server.url, key) == 401
