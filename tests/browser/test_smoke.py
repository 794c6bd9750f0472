import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_user_signs_in_and_creates_an_app(live_server, page, alice, screenshot):
    page.goto(f"{live_server.url}/")
    screenshot(page, "01-login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="My apps").wait_for()
    screenshot(page, "02-home-empty")

    page.get_by_role("link", name="+ Create an App").first.click()
    dialog = page.get_by_role("dialog", name="Create an App")
    dialog.get_by_label("App ID").fill("spam filter")
    dialog.get_by_role("button", name="Create App").click()
    dialog.get_by_text("Letters, digits").last.wait_for()
    screenshot(page, "03-create-app-error")

    dialog.get_by_label("App ID").fill("spam-filter")
    dialog.get_by_label("Description").fill("Tell spam from the rest")
    assert dialog.get_by_label("Image/Video").is_disabled()
    dialog.get_by_role("button", name="Create App").click()
    page.wait_for_url(f"{live_server.url}/apps/spam-filter/")
    page.get_by_role("navigation", name="App sections").get_by_text("Overview").wait_for()
    screenshot(page, "04-app-overview")
