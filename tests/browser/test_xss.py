"""What users type is shown as text on every page, never run: checked in Chromium.

Every text a user controls carries script, attribute-breaking, htmx and javascript: URL
payloads. On each page a dialog (alert) fails the test, and no element made from a
payload may exist in the DOM. The pages also run under the Content-Security-Policy
without a single violation.
"""

import csv
import io
import re
from pathlib import Path

import pytest
from django.urls import reverse

from classifier.hybrid import load_head
from portal import importing
from portal.models import (
    App,
    Concept,
    Dataset,
    Evaluation,
    ImportJob,
    Input,
    ModelVersion,
    PredictionJob,
    text_hash,
)
from tests.browser.signin import sign_in

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = "<script>alert(1)</script>"
PAYLOAD = SCRIPT + '"><img src=x onerror=alert(2)><b hx-get="/admin/" hx-trigger="load">h</b>'
URL = "javascript:alert(3)"
# File names can't hold "/".
FILE_NAME = "'\"><img src=x onerror=alert(4)><svg onload=alert(5)>.csv"

# Elements and attributes that only a payload could have made.
INJECTED = """() => ({
  images: document.querySelectorAll('img[src="x"]').length,
  handlers: document.querySelectorAll("[onerror], [onload]").length,
  scripts: [...document.scripts].filter((s) => s.textContent.includes("alert")).length,
  htmx: [...document.querySelectorAll("[hx-get]")]
    .filter((e) => e.getAttribute("hx-get").includes("/admin/")).length,
  links: document.querySelectorAll('[href^="javascript:"], [src^="javascript:"]').length,
  svgs: document.querySelectorAll("svg[onload]").length,
})"""
NOTHING = {"images": 0, "handlers": 0, "scripts": 0, "htmx": 0, "links": 0, "svgs": 0}


class Watch:
    """Everything a page did that it shouldn't: dialogs, CSP violations, payload requests."""

    def __init__(self, page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.violations: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self.on_dialog)
        page.on("console", self.on_console)
        page.on("request", self.on_request)

    def on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)

    def on_request(self, request) -> None:
        if "/admin/" in request.url or re.search(r"/x$", request.url):
            self.requests.append(request.url)

    def check(self, where: str, shows: str | None = SCRIPT) -> None:
        """The page is quiet and clean; `shows` is on it as text, proving the payload is
        rendered there (escaped), not absent."""
        self.page.wait_for_load_state("networkidle")
        assert self.dialogs == [], where
        assert self.violations == [], where
        assert self.requests == [], where
        assert self.page.evaluate(INJECTED) == NOTHING, where
        if shows is not None:
            assert shows in self.page.locator("body").inner_text(), where


def evaluated(version: ModelVersion, dataset_version, label: str) -> Evaluation:
    from portal import evaluating

    evaluation = Evaluation.objects.create(
        model_version=version,
        dataset_version=dataset_version,
        kfold=dataset_version.pk == version.dataset_version_id,
        label=label,
    )
    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.EVALUATED, evaluation.error
    return evaluation


@pytest.fixture
def poisoned(trained_model) -> dict:
    """The spam filter with a payload in every text a user controls."""
    from portal import versions

    app = trained_model.app
    App.objects.filter(pk=app.pk).update(description=PAYLOAD)
    Concept.objects.filter(app=app, slug="spam").update(name=PAYLOAD)
    Concept.objects.filter(app=app, slug="ham").update(name=f"ham {PAYLOAD}")
    dataset = Dataset.objects.get(app=app, slug="emails")
    Dataset.objects.filter(pk=dataset.pk).update(description=PAYLOAD)
    trained_model.description = PAYLOAD
    trained_model.save(update_fields=["description"])
    spam = Concept.objects.get(app=app, slug="spam")
    for n in range(2):
        text = f"{PAYLOAD} win a prize {n}"
        item = Input.objects.create(
            app=app,
            text=text,
            text_hash=text_hash(text),
            external_id=f"{URL}-{n}",
            metadata={PAYLOAD: PAYLOAD, "link": URL},
        )
        dataset.inputs.add(item)
        item.annotations.create(concept=spam, value=1)
    second = versions.create_version(dataset)
    versions.snapshot(second.pk)
    second.refresh_from_db()
    version = trained_model.versions.get()
    # Version 2 predicts the opposite of version 1, so comparing them on the payload
    # inputs lists those inputs as flipped.
    head = load_head(bytes(version.head))
    linear = getattr(head, "head_", head)  # a hybrid head's linear model, or the head itself
    linear.coef_, linear.intercept_ = -linear.coef_, -linear.intercept_
    flipped = ModelVersion.objects.create(
        model=trained_model,
        number=2,
        status=ModelVersion.Status.TRAINED,
        params=version.params,
        dataset_version=version.dataset_version,
        concepts=version.concepts,
        head=head.dumps(),
    )
    on_first = evaluated(version, second, label="held-out")
    on_second = evaluated(flipped, second, label=PAYLOAD[:100])
    job = ImportJob.objects.create(
        app=app,
        filename=PAYLOAD,
        data=b"input\nhello\n",
        status=ImportJob.Status.DONE,
        created_count=1,
    )
    PredictionJob.objects.create(model_version=version, filename=PAYLOAD, data=b"input\nhello\n")
    return {"app": app, "model": trained_model, "evaluations": (on_first, on_second), "job": job}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_payloads_are_shown_as_text_on_every_page(live_server, page, poisoned, screenshot):
    watch = Watch(page)
    sign_in(page, live_server.url)
    watch.check("home")
    base = f"{live_server.url}/apps/spam-filter"
    pages = {
        "app overview": "/",
        "app settings": "/settings/",
        "concepts": "/concepts/",
        "datasets": "/datasets/",
        "dataset and its versions": "/datasets/emails/",
        "inputs explorer": "/inputs/",
        "models": "/models/",
        "model page": "/models/detector/",
        "model version": "/models/detector/versions/1/",
        "batch prediction": "/models/detector/batch/",
        "evaluations": "/evaluations/",
    }
    # Pages where no payload is shown as text (form fields, slugs only).
    shows_no_payload = {"app settings", "model version", "evaluations"}
    for name, path in pages.items():
        page.goto(base + path)
        watch.check(name, shows=None if name in shows_no_payload else SCRIPT)
    page.goto(base + "/inputs/")
    assert page.locator(".input-text", has_text=SCRIPT).count() == 2
    screenshot(page, "xss-inputs")

    on_first, on_second = poisoned["evaluations"]
    app = poisoned["app"]
    page.goto(live_server.url + reverse("portal:evaluation", args=[app.slug, on_first.pk]))
    watch.check("evaluation page", shows=None)
    # The selection details list the inputs behind a count: the payload inputs are spam.
    shown = ""
    for cell in ("tp", "fn"):
        page.locator(f'#concept-table tr[data-concept="spam"] a[data-cell="{cell}"]').click()
        body = page.locator("#selection-body")
        body.locator("p.muted", has_text="Loading…").wait_for(state="detached")
        shown += body.inner_text()
        watch.check(f"evaluation selection {cell}", shows=None)
        page.locator("#selection-dialog [data-close]").click()
    assert SCRIPT in shown
    screenshot(page, "xss-evaluation")
    page.goto(live_server.url + reverse("portal:evaluation", args=[app.slug, on_second.pk]))
    watch.check("evaluation page with a payload label", shows=None)  # the label is API-only
    page.goto(
        live_server.url
        + reverse("portal:evaluations-compare", args=[app.slug])
        + f"?ids={on_first.pk}&ids={on_second.pk}"
    )
    watch.check("compare")
    screenshot(page, "xss-compare")

    job = poisoned["job"]
    page.goto(live_server.url + reverse("portal:import-status", args=[app.slug, job.pk]))
    watch.check("import job page")

    # Try your own text: the payload as the text, concept names as payloads.
    page.goto(base + "/models/detector/try/")
    page.locator("#try-text").fill(PAYLOAD)
    page.get_by_role("button", name="Predict").click()
    page.locator(".prediction-bars li").first.wait_for()
    watch.check("try result")
    screenshot(page, "xss-try")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_uploaded_file_name_and_its_rows_are_shown_as_text(live_server, page, alice, settings):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 1  # so the import job page shows the name
    App.objects.create(owner=alice, slug="uploads")
    Concept.objects.create(app=App.objects.get(), slug="spam", name="spam")
    body = io.StringIO()
    writer = csv.writer(body)
    writer.writerow(["input", "concepts", "inputid", "metadata"])
    writer.writerow([PAYLOAD, "spam", URL, '{"note": "' + PAYLOAD.replace('"', '\\"') + '"}'])
    watch = Watch(page)
    sign_in(page, live_server.url)

    page.goto(f"{live_server.url}/apps/uploads/inputs/upload/")
    page.get_by_role("tab", name=".csv").click()
    page.locator("#id_file").set_input_files(
        {"name": FILE_NAME, "mimeType": "text/csv", "buffer": body.getvalue().encode()}
    )
    page.get_by_role("button", name="Upload inputs").click()
    page.get_by_text("Waiting for a worker").wait_for()
    job = ImportJob.objects.get()
    # Chromium sends the quote as %22; the rest of the name arrives as typed.
    assert "><img src=x onerror=alert(4)><svg onload=alert(5)>.csv" in job.filename
    watch.check("import job page, waiting", shows=job.filename)
    # The import, run here as the worker runs it; the page polls until it is done.
    assert importing.start_job(job)
    importing.run_job(job)
    page.get_by_text("Imported 1 input").wait_for()
    watch.check("import job page, done", shows=job.filename)
    page.goto(f"{live_server.url}/apps/uploads/inputs/imports/{job.pk}/")
    watch.check("import job page", shows=job.filename)
    page.goto(f"{live_server.url}/apps/uploads/inputs/")
    watch.check("inputs explorer")
    item = Input.objects.get()
    assert (item.text, item.external_id) == (PAYLOAD, URL)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_app_form_refuses_a_payload_id_and_escapes_the_description(live_server, page, alice):
    watch = Watch(page)
    sign_in(page, live_server.url)
    page.get_by_role("link", name="+ Create an App").first.click()
    dialog = page.get_by_role("dialog", name="Create an App")
    dialog.get_by_label("App ID").fill(PAYLOAD[:64])
    dialog.get_by_label("Description").fill(PAYLOAD)
    dialog.get_by_role("button", name="Create App").click()
    dialog.get_by_text("Letters, digits").last.wait_for()
    watch.check("app form with a payload ID", shows=None)
    assert not App.objects.exists()

    dialog.get_by_label("App ID").fill("xss")
    dialog.get_by_role("button", name="Create App").click()
    page.wait_for_url(f"{live_server.url}/apps/xss/")
    watch.check("app overview")
    assert App.objects.get().description == PAYLOAD


# Templates and code never mark user data safe.

SAFE_TEMPLATE = re.compile(r"\|\s*safe\b|\|\s*safeseq\b|autoescape\s+off|filter\s+[^%]*\bsafe\b")
SAFE_PYTHON = re.compile(r"\b(mark_safe|SafeString|SafeText|format_html|html_safe|__html__)\b")
# Reviewed uses: none so far. Add "path: line" here only for literal, fixed markup.
REVIEWED: set[str] = set()


def test_no_template_marks_text_safe():
    found = {
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in (ROOT / "templates").rglob("*.html")
        for line in path.read_text().splitlines()
        if SAFE_TEMPLATE.search(line)
    }
    assert found <= REVIEWED


def test_no_python_marks_text_safe():
    found = {
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for folder in ("portal", "classifier")
        for path in (ROOT / folder).rglob("*.py")
        for line in path.read_text().splitlines()
        if SAFE_PYTHON.search(line)
    }
    assert found <= REVIEWED


def test_scripts_put_no_text_into_html():
    # The page scripts build elements with textContent; innerHTML only takes literals.
    for path in (ROOT / "static" / "portal").glob("*.js"):
        for line in path.read_text().splitlines():
            if "innerHTML" in line or "insertAdjacentHTML" in line or "outerHTML" in line:
                assert re.search(r"HTML\s*=\s*'[^']*';\s*$", line.strip()), (path.name, line)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_work_under_the_content_security_policy(live_server, page, alice):
    watch = Watch(page)
    sign_in(page, live_server.url)
    watch.check("home", shows=None)

    # The API docs: Swagger UI starts from static files only.
    page.goto(f"{live_server.url}/api/v1/docs")
    page.locator(".swagger-ui .info .title", has_text="Textcat Portal API").wait_for()
    page.locator(".opblock-summary-path", has_text="/api/v1/apps").first.wait_for()
    watch.check("API docs", shows=None)

    # htmx: the app form shows its errors in place, then goes to the new app.
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="+ Create an App").first.click()
    dialog = page.get_by_role("dialog", name="Create an App")
    dialog.get_by_label("App ID").fill("c s p")
    dialog.get_by_role("button", name="Create App").click()
    dialog.get_by_text("Letters, digits").last.wait_for()
    dialog.get_by_label("App ID").fill("csp")
    dialog.get_by_role("button", name="Create App").click()
    page.wait_for_url(f"{live_server.url}/apps/csp/")
    watch.check("app overview", shows=None)

    # The policy is enforced: a script put on the page by hand does not run.
    ran = page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
          return window.injected === true;
        }"""
    )
    assert ran is False
    page.wait_for_timeout(200)
    assert any("script-src" in text for text in watch.violations)
