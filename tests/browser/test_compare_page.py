"""Step 9's comparison: tick evaluations on the Evaluations page, Compare, read the page."""

import pytest

from tests.browser.signin import sign_in
from tests.test_compare import evaluated, more_emails, second_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_compare_two_versions_and_two_datasets(live_server, page, trained_model, screenshot):
    first = trained_model.versions.get()
    emails = first.dataset_version
    on_emails = evaluated(first, emails)
    on_more = evaluated(first, more_emails(trained_model.app))
    second = evaluated(second_version(trained_model), emails)

    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/apps/spam-filter/")
    page.get_by_role("navigation", name="App sections").get_by_role(
        "link", name="Evaluations"
    ).click()
    page.wait_for_url("**/evaluations/")
    screenshot(page, "compare-list")

    # Two versions of one model on one dataset version: the flipped inputs are listed.
    page.get_by_label(f"Compare evaluation {on_emails.pk}:").check()
    page.get_by_label(f"Compare evaluation {second.pk}:").check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/evaluations/compare/**")
    assert page.get_by_role("heading", name="Compare evaluations").is_visible()
    assert page.locator("#flipped-inputs tbody tr").count() > 0
    assert page.locator("svg polyline.series").count() == 2 * 2 * 2
    assert page.get_by_role("link", name="Download CSV").is_visible()
    screenshot(page, "compare-versions")

    # One model version on two datasets.
    page.goto(
        f"{live_server.url}/apps/spam-filter/evaluations/compare/"
        f"?ids={on_emails.pk}&ids={on_more.pk}"
    )
    assert page.get_by_text("evaluated on 2 dataset versions").is_visible()
    screenshot(page, "compare-datasets")

    # One evaluation is not a comparison: the page says so.
    page.goto(f"{live_server.url}/apps/spam-filter/evaluations/compare/?ids={on_more.pk}")
    assert page.get_by_text("Choose at least two finished evaluations").is_visible()
    screenshot(page, "compare-too-few")


@pytest.mark.parametrize("width", [1280, 1366])
def test_compare_fits_the_window_with_long_ids(live_server, page, trained_model, width, screenshot):
    from portal.models import Dataset, TrainableModel

    first = trained_model.versions.get()
    on_emails = evaluated(first, first.dataset_version)
    more = more_emails(trained_model.app)
    Dataset.objects.filter(pk=more.dataset.pk).update(slug="d" * 64)
    on_more = evaluated(first, more)
    TrainableModel.objects.filter(pk=trained_model.pk).update(slug="m" * 64)
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, live_server.url)
    page.goto(
        f"{live_server.url}/apps/spam-filter/evaluations/compare/"
        f"?ids={on_emails.pk}&ids={on_more.pk}"
    )
    page.get_by_role("heading", name="Compare evaluations").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for link in page.get_by_role("link", name="Results").all():
        box = link.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
    screenshot(page, f"compare-long-ids-{width}")
