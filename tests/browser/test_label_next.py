"""Label next in Chromium: the keys select concepts, accept, skip and undo."""

import pytest

from portal.models import Annotation, App, Concept, Dataset, Input, text_hash
from tests.browser.signin import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNLABELED = [
    "Claim your free prize now! Text WIN to 80082 before midnight.",
    "Are you coming to the barbecue on Saturday? Bring a salad.",
    "Your parcel is waiting, confirm your address here to arrange delivery.",
]


def shown_input(page) -> Input:
    return Input.objects.get(pk=page.locator("#label-form input[name=input]").input_value())


def box(page, concept: str):
    return page.locator(f'#label-form input[name=concepts][value="{concept}"]')


def labels_of(item: Input) -> dict[str, int]:
    return dict(item.annotations.values_list("concept__slug", "value"))


def test_keys_select_accept_skip_and_undo(live_server, page, trained_model, screenshot):
    app = trained_model.app
    dataset = Dataset.objects.get(app=app, slug="emails")
    for text in UNLABELED:
        dataset.inputs.add(Input.objects.create(app=app, text=text, text_hash=text_hash(text)))
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/datasets/emails/")
    screenshot(page, "label-next-0-dataset-page")
    page.get_by_role("link", name="Label next").last.click()
    page.wait_for_url("**/label-next/?dataset=emails")  # and the page's script loaded
    assert page.get_by_text("Model detector v1 is least sure of this input").is_visible()
    assert page.get_by_text("3 of 13 unlabeled left").is_visible()
    screenshot(page, "label-next-1-suggestion")

    # 1 is ham, 2 is spam (the concepts in order); each key flips its concept.
    first = shown_input(page)
    ham_was, spam_was = box(page, "ham").is_checked(), box(page, "spam").is_checked()
    page.keyboard.press("1")
    page.keyboard.press("2")
    assert box(page, "ham").is_checked() is not ham_was
    assert box(page, "spam").is_checked() is not spam_was
    if not box(page, "spam").is_checked():
        page.keyboard.press("2")
    if box(page, "ham").is_checked():
        page.keyboard.press("1")
    screenshot(page, "label-next-2-selected")

    page.keyboard.press("Enter")
    page.get_by_text("Saved: spam; not ham.").wait_for()
    assert labels_of(first) == {"spam": Annotation.POSITIVE, "ham": Annotation.NEGATIVE}
    second = shown_input(page)
    assert second != first and second.text in UNLABELED
    assert page.get_by_text("1 labeled today").is_visible()
    assert page.get_by_text("2 of 13 unlabeled left").is_visible()
    screenshot(page, "label-next-3-accepted")

    page.keyboard.press("s")
    page.get_by_text("Skipped.").wait_for()
    third = shown_input(page)
    assert third not in (first, second)

    # u takes back the skip, then the accept. Keys pressed while the card is on its way
    # are dropped on purpose (see label-next.js), so each key waits for the last answer.
    page.wait_for_load_state("networkidle")
    page.keyboard.press("u")
    page.get_by_text("Undone.").wait_for()
    assert shown_input(page) == second
    page.locator("#label-card .message").evaluate("el => el.remove()")
    page.wait_for_load_state("networkidle")
    page.keyboard.press("u")
    page.get_by_text("Undone.").wait_for()
    assert shown_input(page) == first
    assert labels_of(first) == {}
    assert box(page, "spam").is_checked() and not box(page, "ham").is_checked()
    assert page.get_by_text("3 of 13 unlabeled left").is_visible()
    screenshot(page, "label-next-4-undone")

    # Choosing how often to retrain applies at once, without a click on Save.
    page.get_by_label("Retrain detector").select_option("after every 10 labels")
    page.get_by_text("Retraining after every 10 labels.").wait_for()
    assert page.get_by_label("Retrain detector").input_value() == "10"
    screenshot(page, "label-next-6-retrain-setting")


def test_without_a_model_the_mouse_and_the_dataset_select_work(
    live_server, page, alice, screenshot
):
    app = App.objects.create(owner=alice, slug="support")
    for slug in ("billing", "bug", "praise"):
        Concept.objects.create(app=app, slug=slug, name=slug.title())
    tickets = Dataset.objects.create(app=app, slug="tickets")
    archive = Dataset.objects.create(app=app, slug="archive")
    for dataset, texts in ((tickets, UNLABELED), (archive, ["An old ticket about invoices."])):
        for text in texts:
            dataset.inputs.add(Input.objects.create(app=app, text=text, text_hash=text_hash(text)))
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/support/label-next/")
    page.get_by_text("Picked at random: no model is trained in this app yet.").wait_for()
    assert shown_input(page).text == "An old ticket about invoices."  # archive comes first
    page.get_by_label("Dataset").select_option("tickets")
    page.wait_for_url("**/label-next/?dataset=tickets")
    first = shown_input(page)
    assert first.text in UNLABELED
    page.get_by_text("billing", exact=True).click()
    page.keyboard.press("3")
    screenshot(page, "label-next-5-no-model")
    page.get_by_role("button", name="Accept").click()
    page.get_by_text("Saved: billing, praise.").wait_for()
    assert labels_of(first) == {"billing": Annotation.POSITIVE, "praise": Annotation.POSITIVE}
    assert shown_input(page) != first
