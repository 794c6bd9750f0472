"""The portal walkthrough from sign-in to Try your own text, by the visible labels."""

import pytest

from portal.models import DatasetVersion, Input, ModelVersion
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPAM = [
    "WINNER!! You have been selected to receive a $900 prize. Call now to claim.",
    "Free entry in a weekly competition to win FA Cup final tickets. Text WIN to 87121.",
    "URGENT! Your mobile number has won a 2000 bonus. Call 09066364311 today.",
    "Congratulations, you won a free cruise! Reply YES to claim your reward.",
    "Cheap loans approved in minutes, no credit check. Visit our site now!",
]
NOT_SPAM = [
    "Are we still meeting for lunch tomorrow at noon?",
    "I'll be home late tonight, don't wait for me for dinner.",
    "Thanks for the notes from class, they really helped.",
    "Can you pick up some milk on your way back?",
    "Happy birthday! Hope you have a wonderful day.",
]

CSV_ROWS = [
    ("Claim your free gift card now, reply STOP to opt out", "spam"),
    ("You are a winner! Collect your cash prize today", "spam"),
    ("See you at the station at six", "not-spam"),
    ("Thanks, the report looks good to me", "not-spam"),
]


def upload_texts(page, texts: list[str], concept: str, new_concept: bool) -> None:
    page.get_by_role("link", name="Upload inputs").first.click()
    dialog = page.get_by_role("dialog", name="Upload inputs")
    dialog.get_by_role("tab", name="Text").click()
    dialog.get_by_label("Text", exact=True).fill("\n".join(texts))
    dialog.get_by_label("Select or add datasets").fill("ema")
    dialog.get_by_role("checkbox", name="emails").check()
    if new_concept:
        dialog.get_by_role("button", name="Add a new concept").click()
        dialog.get_by_label("Select or add concepts").fill(concept)
        dialog.get_by_role("button", name=f"Add new concept {concept}").click()
        dialog.get_by_role("checkbox", name=concept).wait_for()
    else:
        dialog.get_by_role("checkbox", name=concept).check()
    assert dialog.get_by_role("checkbox", name=concept).is_checked()
    return dialog


def test_the_whole_walkthrough(live_server, page, alice, screenshot, celery_worker):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Step 1: Create an App, Text/Document.
    page.get_by_role("link", name="+ Create an App").first.click()
    dialog = page.get_by_role("dialog", name="Create an App")
    dialog.get_by_label("App ID").fill("spam-detector")
    assert dialog.get_by_label("Text/Document").is_checked()
    screenshot(page, "walkthrough-1-create-app")
    dialog.get_by_role("button", name="Create App").click()
    page.wait_for_url("**/apps/spam-detector/")
    screenshot(page, "walkthrough-1-app-overview")

    # Step 2: Datasets -> create a dataset.
    page.get_by_role("navigation", name="App sections").get_by_role("link", name="Datasets").click()
    page.get_by_role("link", name="+ Create a Dataset").first.click()
    dialog = page.get_by_role("dialog", name="Create a Dataset")
    dialog.get_by_label("Dataset ID").fill("emails")
    dialog.get_by_role("button", name="Create Dataset").click()
    page.wait_for_url("**/datasets/emails/")
    screenshot(page, "walkthrough-2-dataset")

    # Step 3: Inputs -> Upload inputs -> Text, with new concepts added on the spot.
    page.get_by_role("navigation", name="App sections").get_by_role("link", name="Inputs").click()
    dialog = upload_texts(page, SPAM, "spam", new_concept=True)
    screenshot(page, "walkthrough-3-upload-spam")
    dialog.get_by_role("button", name="Upload inputs").click()
    page.get_by_text("Uploaded 5 inputs.").wait_for()
    dialog = upload_texts(page, NOT_SPAM, "not-spam", new_concept=True)
    screenshot(page, "walkthrough-3-upload-not-spam")
    dialog.get_by_role("button", name="Upload inputs").click()
    page.get_by_text("Uploaded 5 inputs.").wait_for()
    screenshot(page, "walkthrough-3-inputs")
    assert Input.objects.filter(annotations__concept__slug="spam").count() == 5
    assert Input.objects.filter(annotations__concept__slug="not-spam").count() == 5

    # Step 3b: a CSV file, into the app's only dataset, chosen already.
    page.get_by_role("link", name="Upload inputs").first.click()
    dialog = page.get_by_role("dialog", name="Upload inputs")
    dialog.get_by_role("tab", name=".csv").click()
    rows = "".join(f'"{text}",{concept}\n' for text, concept in CSV_ROWS)
    dialog.get_by_label("CSV file").set_input_files(
        files=[
            {"name": "more.csv", "mimeType": "text/csv", "buffer": f"text,label\n{rows}".encode()}
        ]
    )
    assert dialog.get_by_role("checkbox", name="emails").is_checked()
    screenshot(page, "walkthrough-3-upload-csv")
    dialog.get_by_role("button", name="Upload inputs").click()
    page.get_by_text(f"Uploaded {len(CSV_ROWS)} inputs.").wait_for()

    # Step 4: the dataset page -> New version.
    page.get_by_role("navigation", name="App sections").get_by_role("link", name="Datasets").click()
    page.get_by_role("link", name="emails").first.click()
    page.get_by_role("button", name="New version").click()
    page.locator("#version-1").get_by_text("READY", exact=True).wait_for(timeout=30_000)
    screenshot(page, "walkthrough-4-version")
    version = DatasetVersion.objects.get()
    assert version.input_count == 10 + len(CSV_ROWS)
    assert version.concept_counts["spam"]["positive"] == 7

    # Steps 5-7: Models -> Add Model -> Build a Custom Model -> Transfer Learn -> Train Model.
    page.get_by_role("navigation", name="App sections").get_by_role("link", name="Models").click()
    page.get_by_role("link", name="Add Model").first.click()
    dialog = page.get_by_role("dialog", name="Add Model")
    dialog.get_by_role("radio", name="Build a Custom Model").click()
    dialog.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Transfer Learn").click()
    page.get_by_label("Model ID").fill("spam-classifier")
    page.get_by_role("button", name="Continue to Configure Model").click()
    page.get_by_role("button", name="Train Model").wait_for()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "walkthrough-7-setup")
    page.get_by_role("button", name="Train Model").click()
    page.locator("#model-version-1").get_by_text("Trained", exact=True).wait_for(timeout=90_000)
    assert ModelVersion.objects.get().status == ModelVersion.Status.TRAINED
    # The rest of the page follows the versions table, with no reload.
    page.locator("#version-details").get_by_text("Trained", exact=True).wait_for()
    page.locator("#version-details").get_by_role("button", name="Evaluate").wait_for()
    screenshot(page, "walkthrough-7-trained")

    # Step 8: Try your own text.
    page.get_by_role("link", name="Try your own text").click()
    dialog = page.get_by_role("dialog", name="Try your own text")
    dialog.get_by_label("Your text").fill(
        "Congratulations! You have won a FREE holiday. Call now to claim your prize!"
    )
    dialog.get_by_role("button", name="Predict").click()
    bars = dialog.locator(".prediction-bars li")
    bars.first.wait_for()
    screenshot(page, "walkthrough-8-try-your-own-text")
    assert bars.first.locator(".concept-name").inner_text() == "spam"
    assert float(bars.first.locator(".value").inner_text()) > 0.5
