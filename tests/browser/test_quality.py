"""Find similar from the explorer, label the results; fix a suspicious label in one click."""

import pytest

from portal import embedding
from portal.models import Annotation, App, Concept, Input
from tests.browser.signin import sign_in
from tests.conftest import HAM_TEXTS, SPAM_TEXTS
from tests.test_suspicious import (
    DUPLICATE_A,
    DUPLICATE_B,
    MISLABELED,
    MORE_HAM,
    MORE_SPAM,
    add,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNLABELED = [
    "Flash sale! 90% off designer watches, today only.",
    "Exclusive deal: 80% off luxury watches this weekend only!",
    "Huge discount on designer handbags, 70% off until midnight!",
    "Is the meeting still at three in room 4B?",
]


def labels_of(item: Input) -> dict[str, int]:
    return dict(item.annotations.values_list("concept__slug", "value"))


def test_find_similar_then_fix_a_suspicious_label(live_server, page, alice, embedder, screenshot):
    app = App.objects.create(owner=alice, slug="spam-filter")
    for slug in ("spam", "ham"):
        Concept.objects.create(app=app, slug=slug, name=slug.title())
    items = [add(app, text, spam=1) for text in SPAM_TEXTS + MORE_SPAM]
    items += [add(app, text, ham=1) for text in HAM_TEXTS + MORE_HAM]
    wrong = add(app, MISLABELED, ham=1)
    a, b = add(app, DUPLICATE_A, ham=1), add(app, DUPLICATE_B, spam=1)
    unlabeled = [add(app, text) for text in UNLABELED]
    embedding.embed_inputs([i.pk for i in [*items, wrong, a, b, *unlabeled]])
    source = unlabeled[0]

    sign_in(page, live_server.url)

    # From the explorer's row, Find similar.
    page.goto(f"{live_server.url}/apps/spam-filter/inputs/")
    screenshot(page, "quality-0-explorer")
    page.locator(f"#input-{source.pk}").get_by_role("link", name="Find similar").click()
    page.get_by_role("heading", name="Find similar").wait_for()
    assert page.locator(".similar-source").inner_text().count(UNLABELED[0]) == 1
    rows = page.locator(".similar-row")
    assert rows.count() == 20
    scores = [float(s) for s in page.locator(".similarity").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    top_two = [rows.nth(i).locator("input[name=ids]").get_attribute("value") for i in (0, 1)]
    # The two other unlabeled sales are the nearest.
    assert {int(pk) for pk in top_two} == {unlabeled[1].pk, unlabeled[2].pk}
    screenshot(page, "quality-1-find-similar")

    for i in (0, 1):
        rows.nth(i).locator("input[name=ids]").check()
    page.get_by_label("Concept for the selected results").select_option("spam")
    page.get_by_role("button", name="Label positive").click()
    page.get_by_text("Labeled 2 inputs spam.").wait_for()
    assert labels_of(unlabeled[1]) == labels_of(unlabeled[2]) == {"spam": Annotation.POSITIVE}
    assert not unlabeled[0].annotations.exists() and not unlabeled[3].annotations.exists()
    assert page.locator(f"#similar-{unlabeled[1].pk} .chip.positive").inner_text() == "spam"
    screenshot(page, "quality-2-labeled")

    # Suspicious labels, from the sidebar: the planted mistakes are listed.
    page.get_by_role("link", name="Suspicious labels").click()
    page.get_by_role("heading", name="Suspicious labels").wait_for()
    listed = {row.get_attribute("id") for row in page.locator(".suspect-row").all()}
    assert {f"suspect-{wrong.pk}", f"suspect-{b.pk}"} <= listed
    row = page.locator(f"#suspect-{wrong.pk}")
    assert page.locator(f"#pair-{a.pk}-{b.pk}").is_visible()
    screenshot(page, "quality-3-suspicious")

    row.get_by_role("button", name="Set to spam").click()
    row.get_by_text("Saved", exact=True).wait_for()
    assert labels_of(wrong) == {"spam": Annotation.POSITIVE}
    assert row.locator(".chip.positive").inner_text() == "spam"

    # The near-duplicates: the left one's label for both.
    pair = page.locator(f"#pair-{a.pk}-{b.pk}")
    pair.get_by_role("button", name="Use these labels for both").first.click()
    pair.get_by_text("Saved", exact=True).wait_for()
    assert labels_of(b) == labels_of(a) == {"ham": Annotation.POSITIVE}
    # The row above for the same input now shows its new label, with no stale fix.
    assert page.locator(f"#suspect-{b.pk} .chip.positive").inner_text() == "ham"
    assert page.locator(f"#suspect-{b.pk}").get_by_role("button").count() == 0
    screenshot(page, "quality-4-fixed")
