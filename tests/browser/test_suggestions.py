"""Suggestions in the inputs explorer, in Chromium: a suggested concept on an unlabeled
row becomes a label with one click; all suggestions above a threshold in one action."""

import pytest

from portal import embedding
from portal.models import Annotation, Input, text_hash
from tests.browser.signin import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPAMMY = "You have won a free holiday! Call now to claim your prize."
HAMMY = "Shall we meet for coffee after work tomorrow?"


def labels_of(item: Input) -> dict[str, int]:
    return dict(item.annotations.values_list("concept__slug", "value"))


def unlabeled(app, texts: list[str]) -> list[Input]:
    items = [Input.objects.create(app=app, text=t, text_hash=text_hash(t)) for t in texts]
    embedding.embed_inputs([i.pk for i in items])
    return items


def test_a_suggestion_is_accepted_with_one_click(live_server, page, trained_model, screenshot):
    spammy, hammy = unlabeled(trained_model.app, [SPAMMY, HAMMY])
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/inputs/")

    note = page.locator("#suggest-note")
    assert "from model detector v1" in note.inner_text()
    chip = page.locator(f"#input-{spammy.pk} .chip.suggested")
    assert chip.count() == 1
    assert chip.is_visible()
    assert "spam" in chip.inner_text()
    assert page.locator(f"#input-{hammy.pk} .chip.suggested").get_attribute("data-suggested") == (
        "ham"
    )
    screenshot(page, "suggestions-1-explorer")

    chip.click()
    row = page.locator(f"#input-{spammy.pk}")
    row.get_by_text("Saved", exact=True).wait_for()
    assert row.locator('.chip.positive[data-concept="spam"]').is_visible()
    assert row.locator(".chip.suggested").count() == 0
    assert labels_of(spammy) == {"spam": Annotation.POSITIVE}
    assert labels_of(hammy) == {}
    screenshot(page, "suggestions-2-accepted")

    # The keyboard: "a" accepts the focused row's first suggestion.
    other = page.locator(f"#input-{hammy.pk}")
    other.get_by_text(HAMMY).click()
    page.keyboard.press("a")
    other.get_by_text("Saved", exact=True).wait_for()
    assert other.locator('.chip.positive[data-concept="ham"]').is_visible()
    assert labels_of(hammy) == {"ham": Annotation.POSITIVE}


def test_all_suggestions_above_a_threshold_in_one_action(
    live_server, page, trained_model, screenshot
):
    texts = [f"{SPAMMY} ({n})" for n in range(30)] + [f"{HAMMY} ({n})" for n in range(30)]
    items = unlabeled(trained_model.app, texts)
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/inputs/?state=unlabeled")
    assert "60 inputs match" in page.locator("#match-count").inner_text()

    page.get_by_label("Accept suggestions ≥").fill("0.5")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Accept for all 60 matching").click()

    status = page.locator("#explorer > .message")
    status.wait_for()
    assert "60 inputs labeled" in status.inner_text()
    assert "No inputs match" in page.locator("#explorer").inner_text()  # none left unlabeled
    screenshot(page, "suggestions-3-accepted-all")
    assert all(
        labels_of(item) == {"spam" if item.text.startswith("You") else "ham": 1} for item in items
    )
