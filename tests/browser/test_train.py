"""Steps 5-8 of the portal walkthrough: add a Transfer Learn model and train it."""

import hashlib

import pytest

from portal import versions
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Input,
    ModelVersion,
    TrainableModel,
)
from tests.browser.test_walkthrough import NOT_SPAM, SPAM
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def labeled_app(alice):
    """Steps 1-4 done through the ORM: 10 labeled texts and a READY dataset version."""
    app = App.objects.create(owner=alice, slug="spam-detector")
    dataset = Dataset.objects.create(app=app, slug="emails")
    for slug, texts in (("spam", SPAM), ("non-spam", NOT_SPAM)):
        concept = Concept.objects.create(app=app, slug=slug, name=slug)
        for text in texts:
            item = Input.objects.create(
                app=app, text=text, text_hash=hashlib.sha256(text.encode()).hexdigest()
            )
            dataset.inputs.add(item)
            Annotation.objects.create(input=item, concept=concept, value=Annotation.POSITIVE)
    version = DatasetVersion.objects.create(dataset=dataset, number=1)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    assert version.status == DatasetVersion.Status.READY
    return app


def test_steps_5_to_8(live_server, page, labeled_app, screenshot, celery_worker):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="spam-detector").first.click()

    # Step 5: Models -> Add Model -> Build a Custom Model -> Continue -> Transfer Learn.
    sidebar = page.get_by_role("navigation", name="App sections")
    sidebar.get_by_role("link", name="Models").click()
    page.wait_for_url("**/apps/spam-detector/models/")
    screenshot(page, "train-5-models")
    page.get_by_role("link", name="Add Model").first.click()
    dialog = page.get_by_role("dialog", name="Add Model")
    custom = dialog.get_by_role("radio", name="Build a Custom Model")
    assert custom.is_checked()
    custom.click()
    screenshot(page, "train-5-add-model")
    dialog.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/models/types/**")
    screenshot(page, "train-5-model-types")
    page.get_by_role("link", name="Transfer Learn").click()

    # Step 6: Model ID -> Continue to Configure Model.
    page.get_by_label("Model ID").fill("spam-classifier")
    screenshot(page, "train-6-create-model")
    page.get_by_role("button", name="Continue to Configure Model").click()
    page.wait_for_url("**/models/spam-classifier/setup/")
    assert TrainableModel.objects.get().model_type == "embedding-classifier"

    # Step 7: the set-up form, with the portal's defaults.
    assert page.get_by_label("Dataset", exact=True).input_value() == "emails"
    assert page.get_by_label("Dataset version").input_value() == "1"
    assert page.get_by_label("Base embedding model").input_value() == "all-MiniLM-L6-v2-onnx"
    concepts = page.get_by_role("group", name="Concepts", exact=True)
    assert concepts.get_by_role("checkbox", name="spam", exact=True).is_checked()
    assert concepts.get_by_role("checkbox", name="non-spam", exact=True).is_checked()
    assert concepts.get_by_text("5 positive · 0 negative").count() == 2
    assert not page.get_by_label("Set concepts as mutually exclusive").is_checked()
    assert page.get_by_label("Enrich dataset").input_value() == "Automatic"
    screenshot(page, "train-7-setup")
    page.get_by_text("Configure inference settings (optional)").click()
    assert page.get_by_label("Min value").input_value() == "0.0"
    assert page.get_by_label("Max concepts").input_value() == "20"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar would show mid-page
    screenshot(page, "train-7-inference-settings")
    page.get_by_role("button", name="Train Model").click()

    # Step 8: the model page; the status moves on by itself until Trained.
    page.wait_for_url("**/models/spam-classifier/")
    row = page.locator("#model-version-1")
    screenshot(page, "train-8-training")
    row.get_by_text("Trained", exact=True).wait_for(timeout=60_000)
    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.TRAINED, version.error
    assert row.locator(".status").get_attribute("title") == "Status 21100 MODEL-TRAINED"
    # The details below the table follow too: parameters, timings and the whole log.
    details = page.locator("#version-details")
    details.get_by_text("Trained", exact=True).wait_for()
    assert details.get_by_role("link", name="Download log").is_visible()
    assert "fitted in" in page.locator("pre.training-log").inner_text()
    screenshot(page, "train-8-model-page")


def test_the_set_up_form_follows_the_chosen_dataset(
    live_server, page, labeled_app, screenshot, celery_worker
):
    app = labeled_app
    topics = Dataset.objects.create(app=app, slug="topics")
    sport = Concept.objects.create(app=app, slug="sport", name="sport")
    item = Input.objects.create(app=app, text="Late goal wins the cup", text_hash="0" * 64)
    topics.inputs.add(item)
    Annotation.objects.create(input=item, concept=sport, value=Annotation.POSITIVE)
    TrainableModel.objects.create(app=app, slug="topic-model")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/apps/spam-detector/models/topic-model/setup/")
    concepts = page.get_by_role("group", name="Concepts", exact=True)
    assert concepts.get_by_role("checkbox", name="spam", exact=True).is_checked()

    # A dataset without a version: the form offers to make one, then waits for it.
    page.get_by_label("Dataset", exact=True).select_option("topics")
    page.get_by_text("topics has no ready version").wait_for()
    screenshot(page, "train-7-no-version")
    page.get_by_role("button", name="New version").click()
    page.get_by_label("Dataset version").wait_for(timeout=30_000)
    assert page.get_by_label("Dataset version").input_value() == "1"
    sport_box = concepts.get_by_role("checkbox", name="sport", exact=True)
    assert sport_box.is_checked()
    assert concepts.get_by_text("Fewer than 2 positive examples").is_visible()
    assert concepts.get_by_role("checkbox", name="spam", exact=True).count() == 0
    # The inference settings' subset follows the dataset too.
    page.get_by_text("Configure inference settings (optional)").click()
    subset = page.get_by_role("group", name="Select concepts")
    assert subset.get_by_role("checkbox", name="sport").count() == 1
    assert subset.get_by_role("checkbox", name="spam").count() == 0
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "train-7-other-dataset")

    # Training with no concept says so, on the form.
    sport_box.uncheck()
    page.get_by_role("button", name="Train Model").click()
    page.get_by_role("alert").get_by_text("Choose at least one concept to train.").wait_for()
    assert page.get_by_label("Dataset", exact=True).input_value() == "topics"
    assert not ModelVersion.objects.exists()
    screenshot(page, "train-7-form-error")
