"""Errors in Chromium: an unknown address is the portal's own 404 page with a way back; a
refused or failed htmx request says so beside what sent it, and nothing is swapped in."""

import pytest

from portal.models import Annotation, App, Concept, Input, text_hash
from tests.browser.signin import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPAMMY = "Congratulations, you won a free cruise! Reply YES to claim."
HAMMY = "Are we still meeting for lunch tomorrow at noon?"
INPUTS = "/apps/spam-filter/inputs/"


@pytest.fixture
def items(alice) -> tuple[Input, Input]:
    """Alice's app with the concepts spam and ham; a spam input and an unlabeled one."""
    app = App.objects.create(owner=alice, slug="spam-filter")
    spam = Concept.objects.create(app=app, slug="spam", name="Spam")
    Concept.objects.create(app=app, slug="ham", name="Ham")
    spammy, hammy = (
        Input.objects.create(app=app, text=text, text_hash=text_hash(text))
        for text in (SPAMMY, HAMMY)
    )
    Annotation.objects.create(input=spammy, concept=spam)
    return spammy, hammy


def labels_of(item: Input) -> dict[str, int]:
    return dict(item.annotations.values_list("concept__slug", "value"))


def assert_no_error_page_swapped_in(page) -> None:
    assert page.get_by_role("heading", name="Inputs").is_visible()
    assert page.locator("#explorer .topbar, #explorer h1").count() == 0
    assert page.get_by_label("Password").count() == 0


def test_an_unknown_address_is_the_portals_404_page(live_server, page, items, screenshot):
    page.goto(f"{live_server.url}/no/such/page/")
    page.get_by_role("heading", name="Page not found").wait_for()
    assert "URLconf" not in page.content()
    assert page.get_by_role("button", name="← Back").is_hidden()  # nowhere to go back to
    screenshot(page, "error-pages-1-404-signed-out")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_role("heading", name="Sign in").wait_for()

    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/")
    # A link to a dataset deleted since, followed from a page of the portal.
    page.evaluate("(url) => { location.href = url; }", "/apps/spam-filter/datasets/gone/")
    page.get_by_role("heading", name="Page not found").wait_for()
    assert page.get_by_label("User menu").is_visible()
    screenshot(page, "error-pages-2-404-signed-in")
    page.get_by_role("button", name="← Back").click()
    page.wait_for_url(f"{live_server.url}/apps/spam-filter/")
    page.go_forward()
    page.get_by_role("link", name="My apps").click()
    page.get_by_role("heading", name="My apps").wait_for()


@pytest.mark.urls("tests.test_error_pages")
def test_a_crash_is_the_portals_500_page(live_server, page, alice, screenshot):
    sign_in(page, live_server.url)
    page.evaluate("(url) => { location.href = url; }", "/crash/")
    page.get_by_role("heading", name="Something went wrong").wait_for()
    assert "Traceback" not in page.content()
    screenshot(page, "error-pages-3-500")
    page.get_by_role("button", name="← Back").click()
    page.get_by_role("heading", name="My apps").wait_for()


def test_an_expired_form_is_the_portals_403_page(live_server, page, alice, screenshot):
    page.goto(f"{live_server.url}/accounts/login/")
    page.context.clear_cookies(name="csrftoken")  # blocked, or expired
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="This form has expired").wait_for()
    assert "The form expired or cookies are blocked" in page.locator("main").inner_text()
    screenshot(page, "error-pages-4-403-csrf")
    page.get_by_role("button", name="← Back").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    page.reload()  # a fresh form, and the cookie again
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="My apps").wait_for()


def test_a_row_action_on_a_deleted_input_says_so_in_the_row(live_server, page, items, screenshot):
    spammy, hammy = items
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}{INPUTS}")
    Input.objects.filter(pk=spammy.pk).delete()  # in another tab, or over the API

    row = page.locator(f"#input-{spammy.pk}")
    row.locator('.chip[data-concept="spam"]').click()
    alert = row.get_by_role("alert")
    alert.wait_for()
    assert "That item no longer exists or isn't yours — reload the page" in alert.inner_text()
    assert row.get_by_text(SPAMMY).is_visible()  # the row stays as it was
    assert row.locator('.chip.positive[data-concept="spam"]').is_visible()
    assert page.locator("#input-list > .input-row").count() == 2
    assert_no_error_page_swapped_in(page)
    screenshot(page, "error-pages-5-deleted-input")
    alert.get_by_role("button", name="Dismiss").click()
    assert row.get_by_role("alert").count() == 0

    # A concept deleted since, typed into "+ concept" of the other row, is made again.
    Concept.objects.filter(slug="ham").delete()
    other = page.locator(f"#input-{hammy.pk}")
    other.get_by_label("Add a concept").fill("ham")
    other.get_by_role("button", name="+").click()
    other.get_by_text("Saved", exact=True).wait_for()
    assert other.get_by_role("alert").count() == 0
    assert Concept.objects.filter(slug="ham").exists()
    assert_no_error_page_swapped_in(page)
    assert labels_of(hammy) == {"ham": Annotation.POSITIVE}


def test_a_server_error_or_no_server_says_so_in_the_row(live_server, page, items, screenshot):
    spammy, _ = items
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}{INPUTS}")
    row = page.locator(f"#input-{spammy.pk}")
    chip = row.locator('.chip[data-concept="spam"]')
    alert = row.get_by_role("alert")

    page.route("**/label/", lambda route: route.fulfill(status=500, body="<h1>Server Error</h1>"))
    chip.click()
    alert.wait_for()
    assert "Something went wrong on the server; try again" in alert.inner_text()
    assert_no_error_page_swapped_in(page)
    screenshot(page, "error-pages-6-server-error")

    page.unroute("**/label/")
    page.route("**/label/", lambda route: route.abort())
    chip.click()
    page.get_by_text("The server can't be reached").wait_for()
    assert alert.count() == 1

    page.unroute("**/label/")
    chip.click()
    row.get_by_text("Saved", exact=True).wait_for()
    assert alert.count() == 0
    assert labels_of(spammy) == {"spam": Annotation.NEGATIVE}


def test_a_failed_request_outside_a_row_is_a_toast(live_server, page, items, screenshot):
    spammy, _ = items
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}{INPUTS}")
    page.route("**/inputs/bulk/", lambda route: route.fulfill(status=502, body="Bad Gateway"))
    page.locator(f"#input-{spammy.pk}").get_by_label("Select this input").check()
    page.get_by_label("Concept for the selected inputs").select_option("ham")
    page.get_by_role("button", name="Add concept").click()

    toast = page.locator("body > .request-error")
    toast.wait_for()
    assert toast.get_attribute("role") == "alert"
    assert "Something went wrong on the server; try again" in toast.inner_text()
    assert page.locator("#input-list > .input-row").count() == 2
    assert_no_error_page_swapped_in(page)
    screenshot(page, "error-pages-7-toast")
    toast.get_by_role("button", name="Dismiss").click()
    assert toast.count() == 0
    assert labels_of(spammy) == {"spam": Annotation.POSITIVE}


def test_a_row_action_after_signing_out_elsewhere_asks_to_sign_in(
    live_server, page, items, screenshot
):
    spammy, _ = items
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}{INPUTS}")
    other = page.context.new_page()
    other.goto(f"{live_server.url}/")
    other.get_by_label("User menu").click()
    other.get_by_role("button", name="Log out").click()
    other.get_by_role("heading", name="Sign in").wait_for()
    other.close()

    row = page.locator(f"#input-{spammy.pk}")
    row.locator('.chip[data-concept="spam"]').click()
    alert = row.get_by_role("alert")
    alert.wait_for()
    assert "You were signed out: reload the page to sign in again" in alert.inner_text()
    assert_no_error_page_swapped_in(page)  # not the sign-in page inside the row
    screenshot(page, "error-pages-8-signed-out")
    assert labels_of(spammy) == {"spam": Annotation.POSITIVE}
