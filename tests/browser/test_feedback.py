"""Try your own text, corrected and added to a dataset, in Chromium: the input then shows
in the explorer with the corrected label."""

import pytest

from portal.models import Annotation, Input
from tests.browser.signin import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "Reminder: your free prize draw entry closes tonight, reply to claim."


def test_try_correct_and_add_to_dataset(live_server, page, trained_model, screenshot):
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/models/detector/try/")

    page.get_by_label("Your text").fill(TEXT)
    page.get_by_role("button", name="Predict").click()
    form = page.locator("#try-feedback")
    form.get_by_text("Correct the concepts").wait_for()
    spam, ham = form.get_by_label("spam"), form.get_by_label("ham")
    assert spam.is_checked() and not ham.is_checked()  # the model's prediction
    screenshot(page, "feedback-1-try-result")

    # The person disagrees: it is a real reminder, not spam.
    spam.uncheck()
    ham.check()
    assert form.get_by_label("Dataset").input_value() == "emails"
    form.get_by_role("button", name="Add to dataset").click()
    done = page.locator("#try-feedback [role=status]")
    done.wait_for()
    assert "Added a new input to emails, labeled ham, not spam." in done.inner_text()
    screenshot(page, "feedback-2-added")

    item = Input.objects.get(text=TEXT)
    assert dict(item.annotations.values_list("concept__slug", "value")) == {
        "ham": Annotation.POSITIVE,
        "spam": Annotation.NEGATIVE,
    }
    done.get_by_role("link", name="See it in Inputs").click()
    row = page.locator(f"#input-{item.pk}")
    row.wait_for()
    assert row.locator('.chip.positive[data-concept="ham"]').is_visible()
    assert row.locator('.chip.negative[data-concept="spam"]').is_visible()
    assert row.locator(".tag", has_text="emails").is_visible()
    screenshot(page, "feedback-3-in-explorer")
