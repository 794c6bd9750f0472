"""Step 9 of the portal walkthrough: the results of evaluating a model version."""

import numpy as np
import pytest
from django.urls import reverse

from classifier.evaluation import counts_at, evaluate, most_confident_mistakes, threshold_sweep
from portal import evaluating, training, versions
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Evaluation,
    Input,
    ModelVersion,
    TrainableModel,
    default_params,
    text_hash,
)
from tests.browser.signin import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXTS = {
    "spam": [
        "WINNER!! You have been selected to receive a $900 prize. Call now to claim.",
        "Free entry in a weekly competition to win cup final tickets. Text WIN to 87121.",
        "URGENT! Your mobile number has won a 2000 bonus. Call today to collect.",
        "Congratulations, you won a free cruise! Reply YES to claim your reward.",
        "Cheap loans approved in minutes, no credit check. Visit our site now!",
        "Your account has been suspended, verify your password at this link immediately.",
        # Phishing that reads like work mail: the model may well miss it.
        "Please review the attached invoice and confirm the payment details today.",
    ],
    "ham": [
        "Are we still meeting for lunch tomorrow at noon?",
        "I'll be home late tonight, don't wait for me for dinner.",
        "Thanks for the notes from class, they really helped.",
        "Can you pick up some milk on your way back?",
        "Happy birthday! Hope you have a wonderful day.",
        "Mum says the cat is fine and sends her love.",
        # A friend's news that reads like spam.
        "I won the office raffle! Free tickets for us both, call me to claim yours.",
    ],
    "work": [
        "The quarterly report is due on Friday, please send me your figures.",
        "Meeting moved to 3pm in room 4, agenda attached.",
        "Can you review my pull request before the release?",
        "The client approved the budget for the next phase.",
        "Reminder: timesheets must be submitted by end of day.",
        "Please update the project plan with the new deadlines.",
    ],
}


@pytest.fixture
def emails(alice) -> App:
    """Alice's app: 20 emails labeled spam, ham or work, in READY version 1 of "emails"."""
    app = App.objects.create(owner=alice, slug="mailroom")
    dataset = Dataset.objects.create(app=app, slug="emails")
    for slug, texts in TEXTS.items():
        concept = Concept.objects.create(app=app, slug=slug, name=slug)
        for text in texts:
            item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
            dataset.inputs.add(item)
            Annotation.objects.create(input=item, concept=concept, value=Annotation.POSITIVE)
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    return app


def model_params(concepts: list[str], exclusive: bool = False) -> dict:
    params = default_params()
    params.update(
        dataset_id="emails",
        dataset_version_id="1",
        concepts=concepts,
        concepts_mutually_exclusive=exclusive,
    )
    # Embedding the background corpus takes seconds per fresh test database.
    params["train_params"]["enrich_dataset"] = "Disabled"
    return params


@pytest.fixture
def trained_version(emails, embedder) -> ModelVersion:
    """Version 1 of model "sorter", trained on the emails (before any worker starts)."""
    model = TrainableModel.objects.create(
        app=emails, slug="sorter", params=model_params(list(TEXTS))
    )
    version = training.start_training(model)
    training.train(version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.TRAINED, version.error
    return version


def results_url(live_server, evaluation: Evaluation) -> str:
    app = evaluation.model_version.model.app
    return live_server.url + reverse("portal:evaluation", args=[app.slug, evaluation.pk])


def number(locator) -> float:
    return float(locator.inner_text())


def assert_table_at(page, evaluation: Evaluation, threshold: float) -> None:
    """The per-concept table shows classifier.evaluation's counts at `threshold`."""
    scores = evaluating.load_scores(evaluation)
    expected = counts_at(scores.Y, scores.P, threshold)
    assert page.locator("#threshold-value").inner_text() == f"{threshold:.2f}"
    for concept, counts in zip(evaluation.model_version.concepts, expected, strict=True):
        row = page.locator(f'#concept-table tr[data-concept="{concept}"]')
        for field in ("labeled", "predicted", "tp", "fn", "fp"):
            shown = row.locator(f'[data-field="{field}"]').inner_text()
            assert shown == str(counts[field]), (concept, field, threshold)
        for field in ("recall", "precision", "f1"):
            assert number(row.locator(f'[data-field="{field}"]')) == pytest.approx(
                counts[field], abs=6e-4
            ), (concept, field, threshold)
    macro_f1 = np.mean([counts["f1"] for counts in expected])
    assert number(page.locator('[data-macro="f1"]')) == pytest.approx(macro_f1, abs=6e-4)


def test_the_results_page(live_server, page, trained_version, screenshot, celery_worker):
    version = trained_version
    sign_in(page, live_server.url)
    evaluation = evaluating.start_evaluation(version, version.dataset_version, None)
    page.goto(results_url(live_server, evaluation))
    page.locator(".page-head").get_by_text("Evaluated", exact=True).wait_for(timeout=90_000)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.EVALUATED, evaluation.error
    assert evaluation.kfold and evaluation.folds == 5

    # The header and the summary.
    facts = page.locator(".evaluation-facts")
    assert "5-fold cross-validation" in facts.inner_text()
    assert facts.get_by_text("emails", exact=True).is_visible()
    summary = evaluation.metrics["summary"]
    assert number(page.locator('[data-summary="roc_auc"]')) == pytest.approx(
        summary["macro_roc_auc"], abs=6e-4
    )
    assert number(page.locator('[data-macro="precision"]')) == pytest.approx(
        summary["macro_precision"], abs=6e-4
    )
    assert number(page.locator('[data-macro="recall"]')) == pytest.approx(
        summary["macro_recall"], abs=6e-4
    )
    assert page.locator('[data-summary="inputs"]').inner_text() == "20"
    assert page.locator('[data-summary="accuracy"]').count() == 0  # not mutually exclusive
    assert_table_at(page, evaluation, 0.5)
    screenshot(page, "evaluation-results")

    # The slider redoes the table from the sweep, as counts_at would.
    slider = page.get_by_label("Prediction threshold")
    for threshold in (0.9, 0.25, 0.62):
        slider.fill(str(threshold))
        assert_table_at(page, evaluation, threshold)
    slider.fill("0.9")
    assert page.locator('.curve-chart circle[data-point="roc"]:not([hidden])').count() == 3
    screenshot(page, "evaluation-threshold-0.9")

    # A count opens its inputs, at the slider's threshold.
    scores = evaluating.load_scores(evaluation)
    spam_fn = counts_at(scores.Y, scores.P, 0.9)[0]["fn"]
    assert spam_fn > 0
    page.locator('#concept-table tr[data-concept="spam"] [data-field="fn"] a').click()
    dialog = page.get_by_role("dialog", name="Selection details")
    dialog.get_by_text("spam: false negatives at threshold 0.9").wait_for()
    assert dialog.get_by_text(f"Showing {spam_fn} of {spam_fn} input").is_visible()
    assert dialog.locator(".selection-item").count() == spam_fn
    # Every input shows its labels and a probability for every concept.
    first = dialog.locator(".selection-item").first
    assert first.locator(".chip.positive").inner_text() == "spam"
    assert first.locator(".prediction-bars li").count() == 3
    screenshot(page, "evaluation-selection-fn")
    dialog.get_by_role("button", name="Close").click()

    # A confusion-matrix cell opens the inputs labeled one concept and predicted another.
    matrix = evaluation.metrics["confusion_matrix"]
    cell = page.get_by_title("Labeled work, predicted work: show the inputs")
    assert cell.locator("b").inner_text() == str(matrix["counts"][2][2])
    cell.click()
    dialog.get_by_text("Labeled work, predicted work").wait_for()
    expected = evaluating.cell(evaluation, "work", "work")
    assert dialog.locator(".selection-item").count() == len(expected)
    assert dialog.get_by_text(TEXTS["work"][0]).is_visible()
    screenshot(page, "evaluation-selection-cell")
    dialog.get_by_role("button", name="Close").click()

    # The curves, the reliability diagram and the mistakes.
    assert page.locator(".curve-chart polyline[data-concept]").count() == 6
    bins = evaluation.metrics["calibration"]["bins"]
    assert page.locator("#reliability-diagram circle").count() == len(bins) > 0
    page.locator("#reliability-diagram").scroll_into_view_if_needed()
    screenshot(page, "evaluation-reliability")
    assert page.get_by_text("not enough labels for a curve").count() == 0
    mistakes = page.locator(".mistakes-table tbody tr")
    assert mistakes.count() == max(1, len(evaluation.metrics["mistakes"]))

    # Thresholds that stick: the lowest thresholds reaching precision 0.9...
    wanted = evaluating.thresholds_for_precision(evaluation, 0.9)
    page.get_by_label("Target precision").fill("0.9")
    page.get_by_role("button", name="Save thresholds reaching this precision").click()
    page.locator(".message").first.wait_for()
    version.refresh_from_db()
    saved = version.params["inference_params"]["concept_thresholds"]
    assert saved == {c: t for c, t in wanted.items() if t is not None}
    for concept, value in saved.items():
        assert page.locator(".saved-thresholds").get_by_text(f"{concept} ≥ {value}").is_visible()
    screenshot(page, "evaluation-thresholds-saved")

    # ...or the slider's value for every concept.
    page.get_by_label("Prediction threshold").fill("0.7")
    page.get_by_role("button", name="Use slider value").click()
    assert page.get_by_label("work", exact=True).input_value() == "0.70"
    page.get_by_role("button", name="Save thresholds", exact=True).click()
    page.get_by_text("Saved to version v1's inference settings").wait_for()
    version.refresh_from_db()
    assert version.params["inference_params"]["concept_thresholds"] == {
        "spam": 0.7,
        "ham": 0.7,
        "work": 0.7,
    }

    # Delete, after confirming.
    page.get_by_text("Delete evaluation").first.click()
    page.get_by_role("button", name="Delete evaluation").click()
    page.get_by_text("The evaluation was deleted.").wait_for()
    assert not Evaluation.objects.exists()


@pytest.fixture
def untrained_version(emails) -> ModelVersion:
    """A TRAINED version row without a head: enough for pages that only read results."""
    dataset_version = DatasetVersion.objects.get(dataset__app=emails)
    concepts = ["spam", "ham", "work"]
    model = TrainableModel.objects.create(
        app=emails, slug="sorter", params=model_params(concepts, exclusive=True)
    )
    return ModelVersion.objects.create(
        model=model,
        number=1,
        params=model.params,
        concepts=concepts,
        dataset_version=dataset_version,
        status=ModelVersion.Status.TRAINED,
    )


def test_the_status_follows_the_job(live_server, page, untrained_version, screenshot):
    version = untrained_version
    evaluation = Evaluation.objects.create(
        model_version=version, dataset_version=version.dataset_version, kfold=True
    )
    sign_in(page, live_server.url)
    page.goto(results_url(live_server, evaluation))
    status = page.locator("#evaluation-status")
    assert status.get_by_text("Waiting to evaluate").is_visible()
    assert status.get_by_text("Waiting for a worker…").is_visible()
    assert status.get_attribute("hx-trigger") == "every 1s"
    screenshot(page, "evaluation-queued")

    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=Evaluation.Status.EVALUATING,
        progress=0.68,
        stage="Cross-validation: fold 2 of 5 done",
    )
    status.get_by_text("Cross-validation: fold 2 of 5 done · 68%").wait_for()
    assert status.get_by_role("progressbar").get_attribute("aria-valuenow") == "68"
    screenshot(page, "evaluation-running")

    reason = (
        "cross-validation needs at least 2 positive examples of each concept: concept 'x' has 1"
    )
    evaluating.fail(evaluation.pk, reason)
    # The finished fragment reloads the page, which shows the reason and stops polling.
    page.get_by_role("alert").get_by_text("Cross-validation needs at least 2").wait_for()
    assert page.locator("#evaluation-status").get_attribute("hx-trigger") is None
    assert status.get_by_text("Evaluation failed").is_visible()
    assert page.locator("#concept-table").count() == 0
    screenshot(page, "evaluation-failed")


def test_held_out_mutually_exclusive_results(live_server, page, untrained_version, screenshot):
    """Scores stored as the worker stores them, on a test set without "work" labels."""
    version = untrained_version
    dataset_version = version.dataset_version
    rows = [row for row in dataset_version.rows.order_by("pk") if row.positive != ["work"]]
    concepts = list(version.concepts)
    Y = np.full((len(rows), 3), -1, dtype=np.int8)
    for i, row in enumerate(rows):
        Y[i, concepts.index(row.positive[0])] = 1
    rng = np.random.default_rng(0)
    logits = rng.normal(size=Y.shape) + 2.5 * (Y == 1)
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    metrics = evaluate(Y, P, concepts, mutually_exclusive=True)
    metrics["sweep"] = threshold_sweep(Y, P)
    ids = np.array([row.pk for row in rows], dtype=np.int64)
    metrics["mistakes"] = [
        {**m, "row": int(ids[m["row"]])} for m in most_confident_mistakes(Y, P, concepts)
    ]
    evaluation = Evaluation.objects.create(
        model_version=version,
        dataset_version=dataset_version,
        kfold=False,
        status=Evaluation.Status.EVALUATED,
        metrics=metrics,
        data=evaluating.dump_scores(evaluating.Scores(ids, Y, P)),
    )

    sign_in(page, live_server.url)
    page.goto(results_url(live_server, evaluation))
    assert "Held-out test set" in page.locator(".evaluation-facts").inner_text()
    accuracy = metrics["summary"]["accuracy"]
    assert number(page.locator('[data-summary="accuracy"]')) == pytest.approx(accuracy, abs=6e-4)
    assert page.locator('#concept-table tr[data-concept="work"] td').nth(0).inner_text() == "—"
    assert page.get_by_text("not enough labels for a curve").count() == 2
    assert_table_at(page, evaluation, 0.5)
    page.get_by_label("Prediction threshold").fill("0.33")
    assert_table_at(page, evaluation, 0.33)
    screenshot(page, "evaluation-held-out")

    # An off-diagonal cell: inputs the model took for another concept.
    counts = metrics["confusion_matrix"]["counts"]
    actual, predicted = next(
        (concepts[a], concepts[b]) for a in range(3) for b in range(3) if a != b and counts[a][b]
    )
    page.get_by_title(f"Labeled {actual}, predicted {predicted}: show the inputs").click()
    dialog = page.get_by_role("dialog", name="Selection details")
    dialog.get_by_text(f"Labeled {actual}, predicted {predicted}").wait_for()
    expected = evaluating.cell(evaluation, actual, predicted)
    assert dialog.locator(".selection-item").count() == len(expected)
    screenshot(page, "evaluation-held-out-cell")
