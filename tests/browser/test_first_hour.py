"""The first hour in a browser: the upload window's CSV preview and label mapping, toasts,
the sidebar, a new concept typed in a row, Try your own text's keys, Label next with
exclusive concepts, and the pages' widths at 1280 and 1366 pixels."""

import pytest

from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    Input,
    ModelVersion,
    default_params,
    text_hash,
)
from tests.browser.signin import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 1366)
CSV = (
    "text,label\n"
    "Win a free cruise today,spam\n"
    '"Lunch at noon, as usual?",ham\n'
    "Your parcel is waiting: pay the fee now,spam\n"
    "See you at the station,ham\n"
)


@pytest.fixture
def app(alice) -> App:
    app = App.objects.create(owner=alice, slug="mailroom")
    Dataset.objects.create(app=app, slug="emails")
    return app


def fits(page) -> bool:
    """Nothing on the page is wider than the window."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_dropped_csv_is_previewed_and_its_labels_mapped(live_server, page, app, screenshot):
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/mailroom/inputs/")
    page.get_by_role("link", name="Upload inputs").first.click()
    dialog = page.get_by_role("dialog", name="Upload inputs")
    dialog.get_by_role("tab", name=".csv").click()
    dialog.get_by_label("CSV file").set_input_files(
        files=[{"name": "mail.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    preview = dialog.locator("#csv-preview")
    preview.get_by_text("mail.csv: text and label, labels in column “label”.").wait_for()
    assert preview.locator(".csv-rows tbody tr").count() == 4
    assert preview.get_by_text("Lunch at noon, as usual?").is_visible()
    preview.get_by_text("Label mapping: 2 labels in the first rows").click()
    preview.get_by_label("Concept ID for the file label ham").fill("not-spam")
    assert dialog.get_by_role("checkbox", name="emails").is_checked()  # the only dataset
    page.set_viewport_size({"width": 1366, "height": 800})
    screenshot(page, "first-hour-csv-preview-1366")
    dialog.get_by_role("button", name="Upload inputs").click()
    toast = page.locator("ul.toasts li", has_text="Uploaded 4 inputs.")
    toast.wait_for()
    screenshot(page, "first-hour-toast-1366")
    assert set(Concept.objects.filter(app=app).values_list("slug", flat=True)) == {
        "spam",
        "not-spam",
    }
    toast.get_by_role("button", name="Dismiss").click()
    toast.wait_for(state="detached")
    assert errors == []


def test_a_refused_upload_keeps_the_window_and_says_why(live_server, page, app):
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    Dataset.objects.create(app=app, slug="archive")  # two datasets: none is chosen
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/mailroom/inputs/")
    page.get_by_role("link", name="Upload inputs").first.click()
    dialog = page.get_by_role("dialog", name="Upload inputs")
    dialog.get_by_label("Text", exact=True).fill("a text for no dataset")
    dialog.get_by_role("button", name="Upload inputs").click()
    dialog.get_by_text("inputs in no dataset are in no version").wait_for()
    assert not Input.objects.exists()
    dialog.get_by_role("checkbox", name="archive").check()
    dialog.get_by_role("button", name="Upload inputs").click()
    page.get_by_text("Uploaded 1 input.").wait_for()
    assert Input.objects.get().datasets.get().slug == "archive"
    assert errors == []


def test_the_collapsed_sidebar_shows_every_icon_clear_of_its_toggle(
    live_server, page, app, screenshot
):
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/mailroom/")
    page.get_by_role("button", name="Collapse sidebar").click()
    toggle = page.get_by_role("button", name="Expand sidebar").bounding_box()
    first = page.locator("#sidebar a").first.locator(".icon").bounding_box()
    assert first["y"] >= toggle["y"] + toggle["height"]
    assert page.locator("#sidebar a .icon svg").count() == 9
    screenshot(page, "first-hour-sidebar-collapsed")
    page.get_by_role("button", name="Expand sidebar").click()
    page.get_by_role("button", name="Collapse sidebar").wait_for()


def test_a_new_concept_typed_in_a_row_is_created_without_leaving_the_page(
    live_server, page, app, screenshot
):
    item = Input.objects.create(app=app, text="Cheap watches here", text_hash=text_hash("x"))
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/mailroom/inputs/")
    row = page.locator(f"#input-{item.pk}")
    row.get_by_label("Add a concept").fill("promo")
    row.get_by_label("Add a concept").press("Enter")
    page.locator(f"#input-{item.pk}").get_by_role("button", name="promo").wait_for()
    page.locator(f"#input-{item.pk}").get_by_label("Add a concept").fill("two words")
    page.locator(f"#input-{item.pk}").get_by_label("Add a concept").press("Enter")
    alert = page.locator(f"#input-{item.pk} [role=alert]")
    alert.wait_for()
    assert "ID" in alert.inner_text() or "characters" in alert.inner_text()
    assert page.get_by_role("heading", name="Inputs").is_visible()  # still the page
    screenshot(page, "first-hour-row-concept-refused")
    assert list(Concept.objects.filter(app=app).values_list("slug", flat=True)) == ["promo"]


def test_try_your_own_text_keys_and_a_stale_answer(live_server, page, trained_model):
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/models/detector/try/")
    box = page.get_by_label("Your text")
    box.fill("WIN a free prize, call now!")
    box.press("Control+Enter")
    result = page.locator("#try-result")
    result.locator(".prediction-bars li").first.wait_for()
    box.type(" more")
    assert "stale" in result.get_attribute("class")
    box.press("Control+Enter")
    page.locator("#try-result:not(.stale) .prediction-bars").wait_for()


def test_label_next_with_exclusive_concepts_keeps_one_choice(
    live_server, page, trained_model, screenshot
):
    version = trained_model.versions.get()
    ModelVersion.objects.filter(pk=version.pk).update(
        params={**default_params(), **version.params, "concepts_mutually_exclusive": True}
    )
    dataset = Dataset.objects.get(app=trained_model.app, slug="emails")
    item = Input.objects.create(
        app=trained_model.app, text="Are you free on Friday?", text_hash=text_hash("fri")
    )
    dataset.inputs.add(item)
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/label-next/?dataset=emails")
    spam, ham = page.get_by_role("checkbox", name="spam"), page.get_by_role("checkbox", name="ham")
    spam.check()
    ham.check()
    assert ham.is_checked() and not spam.is_checked()
    page.get_by_label("Several concepts on purpose").check()
    spam.check()
    assert spam.is_checked() and ham.is_checked()
    page.locator("#label-several-warning").wait_for()
    page.set_viewport_size({"width": 1366, "height": 800})
    screenshot(page, "first-hour-label-next-several-1366")
    page.get_by_role("button", name="Accept").click()
    page.get_by_text("Saved: ").wait_for()
    assert set(Annotation.objects.filter(input=item).values_list("value", flat=True)) == {1}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_pages_fit_the_window(live_server, page, alice, trained_model, width, screenshot):
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, live_server.url)
    pages = {
        "home": "/",
        "tokens": "/account/api-tokens/",
        "overview": "/apps/spam-filter/",
        "inputs": "/apps/spam-filter/inputs/",
        "model": "/apps/spam-filter/models/detector/",
        "evaluations": "/apps/spam-filter/evaluations/",
    }
    for name, url in pages.items():
        page.goto(f"{live_server.url}{url}")
        assert fits(page), f"{name} is wider than {width} px"
        screenshot(page, f"first-hour-{name}-{width}")
