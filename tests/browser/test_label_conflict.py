"""Two tabs label the same input: the stale one is told, shown the current labels, and
applies its change with a second click."""

import pytest

from portal.models import Annotation, App, Concept, Input, text_hash
from tests.browser.signin import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def labels_of(item: Input) -> dict[str, int]:
    return dict(item.annotations.values_list("concept__slug", "value"))


def add_label(page, item: Input, concept: str) -> None:
    row = page.locator(f"#input-{item.pk}")
    row.get_by_label("Add a concept").fill(concept)
    row.get_by_role("button", name="+").click()


def test_a_stale_tab_is_told_and_shown_the_current_labels(live_server, browser, alice, screenshot):
    app = App.objects.create(owner=alice, slug="spam-filter")
    for slug in ("spam", "ham"):
        Concept.objects.create(app=app, slug=slug, name=slug.title())
    text = "Congratulations, you won a free cruise! Reply YES to claim."
    item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
    context = browser.new_context(viewport={"width": 1280, "height": 700})
    context.set_default_timeout(15_000)
    first = context.new_page()
    first.goto(f"{live_server.url}/accounts/login/")
    first.get_by_label("Username").fill("alice")
    first.get_by_label("Password").fill(PASSWORD)
    first.get_by_role("button", name="Sign in").click()
    first.get_by_role("heading", name="Apps").wait_for()
    inputs_url = f"{live_server.url}/apps/spam-filter/inputs/"
    first.goto(inputs_url)
    second = context.new_page()
    second.goto(inputs_url)

    add_label(first, item, "ham")
    first.locator(f"#input-{item.pk}").get_by_text("Saved", exact=True).wait_for()
    assert labels_of(item) == {"ham": Annotation.POSITIVE}

    add_label(second, item, "spam")
    row = second.locator(f"#input-{item.pk}")
    warning = row.get_by_role("alert")
    warning.wait_for()
    assert "Changed elsewhere since you opened it" in warning.inner_text()
    assert row.locator('.chip[data-concept="ham"]').is_visible()  # the first tab's label
    assert labels_of(item) == {"ham": Annotation.POSITIVE}
    screenshot(second, "label-conflict-1-stale-tab")

    # The refused concept is still typed in: one click applies it.
    assert row.get_by_label("Add a concept").input_value() == "spam"
    row.get_by_role("button", name="+").click()
    row.get_by_text("Saved", exact=True).wait_for()
    assert row.get_by_role("alert").count() == 0
    assert labels_of(item) == {"ham": Annotation.POSITIVE, "spam": Annotation.POSITIVE}
    screenshot(second, "label-conflict-2-applied")
    context.close()


def test_quick_keys_in_one_tab_all_apply(live_server, page, alice):
    app = App.objects.create(owner=alice, slug="spam-filter")
    for slug in ("ham", "spam"):
        Concept.objects.create(app=app, slug=slug, name=slug.title())
    text = "Are we still meeting for lunch tomorrow at noon?"
    item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
    Annotation.objects.create(input=item, concept=app.concepts.get(slug="ham"))
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/inputs/")
    row = page.locator(f"#input-{item.pk}")
    row.get_by_text(text).click()  # focuses the row for the keyboard
    # Two keys in the same instant, for two forms of the row (the ham chip, "+ concept"
    # for spam): the second comes before the first one's answer.
    page.evaluate(
        """(id) => {
            const row = document.getElementById(id);
            for (const key of "12") {
                row.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
            }
        }""",
        f"input-{item.pk}",
    )
    # The second waits for the first one's answer, then goes with the new revision.
    row.locator('.chip.positive[data-concept="spam"]').wait_for()
    page.wait_for_load_state("networkidle")
    assert row.get_by_role("alert").count() == 0
    assert labels_of(item) == {"ham": Annotation.NEGATIVE, "spam": Annotation.POSITIVE}
    assert row.locator('.chip.negative[data-concept="ham"]').is_visible()
