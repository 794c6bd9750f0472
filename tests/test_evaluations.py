import itertools
import json
import time
from datetime import timedelta

import numpy as np
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.messages import get_messages
from django.utils import timezone

from classifier.evaluation import (
    calibration,
    cross_val_proba,
    evaluate,
    most_confident_mistakes,
    threshold_sweep,
)
from classifier.hybrid import head_proba, load_head
from portal import embedding, evaluating, prediction, reaper, training, versions
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    DatasetVersionRow,
    Evaluation,
    Input,
    ModelVersion,
    TrainableModel,
    text_hash,
)
from portal.queue import QueueUnavailable
from portal.tasks import evaluate_model_version
from tests.conftest import HAM_TEXTS, SPAM_TEXTS
from tests.test_tasks import wait_for

# Committed transactions: the queue is sent to on commit, and the real worker reads them.
pytestmark = pytest.mark.django_db(transaction=True)

Status = Evaluation.Status
APP = "/apps/spam-filter"
EVALUATE = f"{APP}/models/detector/versions/1/evaluate/"
MODEL_PAGE = f"{APP}/models/detector/"
API = "/api/v1/apps/spam-filter/models/detector/predict"
SPAMMY = "You have WON a free prize! Call now to claim your cash reward"
# A second labeled set for held-out evaluations, with a few inputs that look like the
# other concept, so that some cells off the diagonal may fill.
HELD_OUT = [
    ("You have been chosen for a free holiday! Text CLAIM to 80082 now.", "spam"),
    ("Last chance to win a brand new phone today, reply WIN to enter.", "spam"),
    ("Your account is suspended: click the link to verify your bank details.", "spam"),
    ("hey it's me, long time no see, call me back on this number", "spam"),
    ("Great news, I won the raffle at work! Call me tonight.", "ham"),
    ("Do you want to come over for dinner on Saturday?", "ham"),
    ("The train is delayed, I'll be twenty minutes late.", "ham"),
    ("Free pizza in the kitchen, come and claim a slice before it's gone!", "ham"),
]


def make_version(app: App, slug: str, labeled: list[tuple[str, str | None]]) -> DatasetVersion:
    """Version 1 of a new dataset `slug` of `app`: each text, positive for its concept
    (created if new) or unlabeled (None)."""
    dataset = Dataset.objects.create(app=app, slug=slug)
    for text, concept in labeled:
        item, _ = Input.objects.get_or_create(app=app, text_hash=text_hash(text), text=text)
        dataset.inputs.add(item)
        if concept is not None:
            concept_row, _ = Concept.objects.get_or_create(
                app=app, slug=concept, defaults={"name": concept}
            )
            Annotation.objects.create(input=item, concept=concept_row, value=Annotation.POSITIVE)
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    assert version.status == DatasetVersion.Status.READY
    return version


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def evaluated(version: ModelVersion, dataset_version: DatasetVersion) -> Evaluation:
    """An evaluation started and run in-process, as the worker runs it."""
    evaluation = evaluating.start_evaluation(version, dataset_version, None)
    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Status.EVALUATED, evaluation.error
    return evaluation


def recomputed(evaluation: Evaluation) -> dict:
    """The report `classifier.evaluation` makes from the stored scores."""
    scores = evaluating.load_scores(evaluation)
    version = evaluation.model_version
    concepts = list(version.concepts)
    exclusive = bool(version.params.get("concepts_mutually_exclusive"))
    metrics = evaluate(scores.Y, scores.P, concepts, threshold=0.5, mutually_exclusive=exclusive)
    metrics["sweep"] = threshold_sweep(scores.Y, scores.P)
    metrics["calibration"] = calibration(scores.Y, scores.P)
    metrics["mistakes"] = [
        {**m, "row": int(scores.rows[m["row"]])}
        for m in most_confident_mistakes(scores.Y, scores.P, concepts)
    ]
    return metrics


@pytest.fixture
def version(trained_model) -> ModelVersion:
    """Version 1 of "detector", trained on 5 spam and 5 ham inputs."""
    return trained_model.versions.get()


@pytest.fixture
def held_out(trained_model) -> DatasetVersion:
    return make_version(trained_model.app, "held-out", HELD_OUT)


@pytest.fixture
def kfold(version) -> Evaluation:
    return evaluated(version, version.dataset_version)


@pytest.fixture
def held_out_evaluation(version, held_out) -> Evaluation:
    return evaluated(version, held_out)


# The backend


def test_on_the_training_version_it_cross_validates(version, alice):
    evaluation = evaluating.start_evaluation(version, version.dataset_version, alice)
    assert evaluation.kfold
    assert evaluation.status == Status.QUEUED
    assert evaluation.get_status_display() == "MODEL-QUEUED-FOR-EVALUATION"

    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Status.EVALUATED, evaluation.error
    assert evaluation.get_status_display() == "MODEL-EVALUATED"
    assert (evaluation.folds, evaluation.folds_note) == (5, "")
    assert evaluation.method == "5-fold cross-validation"
    assert evaluation.progress == 1.0
    assert evaluation.started <= evaluation.finished
    assert evaluation.metrics == recomputed(evaluation)

    scores = evaluating.load_scores(evaluation)
    rows = dict(version.dataset_version.rows.values_list("pk", "text"))
    assert sorted(scores.rows.tolist()) == sorted(rows)
    texts = [rows[pk] for pk in scores.rows.tolist()]
    # Spam inputs are labeled spam and, implicitly, not ham; and the other way round.
    expected = [[1, 0] if text in SPAM_TEXTS else [0, 1] for text in texts]
    assert evaluating.known_labels(scores.Y).tolist() == expected
    # Each input was scored by a head that never saw it, fitted with the version's settings.
    X = embedding.vectors(
        version.params["train_params"]["base_embed_model"], texts, [text_hash(t) for t in texts]
    )
    head = training.new_head(version.params, list(version.concepts), None)
    P, folds, _ = cross_val_proba(head, X, scores.Y, folds=5, texts=texts)
    assert folds == 5
    np.testing.assert_allclose(scores.P, P)
    trained = head_proba(load_head(bytes(version.head)), texts, X)
    assert not np.allclose(scores.P, trained)


def test_on_another_version_it_scores_with_the_trained_head(version, held_out):
    evaluation = evaluated(version, held_out)
    assert not evaluation.kfold
    assert (evaluation.folds, evaluation.folds_note) == (None, "")
    assert evaluation.method == "held-out test set"
    assert evaluation.metrics == recomputed(evaluation)
    assert evaluation.metrics["summary"]["n_rows"] == len(HELD_OUT)
    assert [c["n"] for c in evaluation.metrics["concepts"]] == [len(HELD_OUT)] * 2

    scores = evaluating.load_scores(evaluation)
    rows = dict(held_out.rows.values_list("pk", "text"))
    texts = [rows[pk] for pk in scores.rows.tolist()]
    assert sorted(texts) == sorted(t for t, _ in HELD_OUT)
    base_model = version.params["train_params"]["base_embed_model"]
    X = embedding.vectors(base_model, texts, [text_hash(t) for t in texts])
    head = load_head(bytes(version.head))
    np.testing.assert_array_equal(scores.P, head_proba(head, texts, X))


def test_a_real_worker_moves_it_to_evaluated(
    version, held_out, embedder, monkeypatch, celery_worker
):
    # The held-out texts are new: slow their embedding down so the running state shows.
    original = embedder.encode

    def slow(texts, **kw):
        time.sleep(1)
        return original(texts, **kw)

    monkeypatch.setattr(embedder, "encode", slow)
    evaluation = evaluating.start_evaluation(version, held_out, None)
    seen = [evaluation.status]
    stages = set()

    def finished() -> bool:
        current = Evaluation.objects.get(pk=evaluation.pk)
        if current.status != seen[-1]:
            seen.append(current.status)
        if current.status == Status.EVALUATING:
            stages.add(current.stage)
        return current.is_finished

    assert wait_for(finished, timeout=60)
    evaluation.refresh_from_db()
    assert evaluation.status == Status.EVALUATED, evaluation.error
    assert seen == [21303, 21301, 21300]
    assert f"Embedding {len(HELD_OUT)} texts" in stages
    assert (evaluation.stage, evaluation.progress) == ("Evaluated", 1.0)


def test_it_reads_cached_embeddings_and_embeds_only_new_texts(
    version, held_out, embedder, monkeypatch
):
    calls: list[list[str]] = []
    original = embedder.encode
    monkeypatch.setattr(
        embedder, "encode", lambda texts, **kw: calls.append(list(texts)) or original(texts, **kw)
    )
    evaluated(version, version.dataset_version)
    assert calls == []  # training embedded all of them

    evaluated(version, held_out)
    assert sorted(itertools.chain(*calls)) == sorted(t for t, _ in HELD_OUT)

    calls.clear()
    evaluated(version, held_out)
    assert calls == []


def test_a_version_without_the_models_concepts_fails_in_plain_words(version):
    unlabeled = make_version(version.model.app, "unlabeled", [("Just some text.", None)])
    evaluation = evaluating.start_evaluation(version, unlabeled, None)
    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Status.FAILED
    assert evaluation.get_status_display() == "MODEL-EVALUATION-FAILED"
    assert (
        evaluation.error == "no input in version 1 of dataset unlabeled is labeled with spam or ham"
    )
    assert evaluation.finished is not None
    assert evaluation.metrics is None


def test_a_version_labeled_only_with_other_concepts_fails_in_plain_words(version):
    labeled = [("The meeting moved to room 4.", "work"), ("Lunch at noon?", "personal")]
    others = make_version(version.model.app, "others", labeled)
    evaluation = evaluating.start_evaluation(version, others, None)
    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Status.FAILED
    assert "is labeled with spam or ham" in evaluation.error


def test_an_untrained_version_cannot_be_evaluated(spam_model):
    queued = training.start_training(spam_model)
    with pytest.raises(evaluating.EvaluationError, match="Version 1 is not trained"):
        evaluating.start_evaluation(queued, queued.dataset_version, None)
    assert not Evaluation.objects.exists()


def test_a_dataset_version_of_another_app_is_refused(version, alice):
    app = App.objects.create(owner=alice, slug="elsewhere")
    foreign = make_version(app, "emails", [(SPAM_TEXTS[0], "spam"), (HAM_TEXTS[0], "ham")])
    with pytest.raises(evaluating.EvaluationError, match="belongs to another app"):
        evaluating.start_evaluation(version, foreign, None)
    assert not Evaluation.objects.exists()


def test_a_dataset_version_not_ready_is_refused(version):
    pending = versions.create_version(version.dataset_version.dataset)
    with pytest.raises(evaluating.EvaluationError, match="is not ready"):
        evaluating.start_evaluation(version, pending, None)
    assert not Evaluation.objects.exists()


def test_with_the_queue_down_no_evaluation_waits(version, dead_broker):
    with pytest.raises(QueueUnavailable):
        evaluating.start_evaluation(version, version.dataset_version, None)
    evaluation = Evaluation.objects.get()
    assert evaluation.status == Status.FAILED
    assert evaluation.error == evaluating.QUEUE_UNAVAILABLE
    assert evaluation.finished is not None


def test_a_task_delivered_twice_evaluates_once(version):
    evaluation = evaluating.start_evaluation(version, version.dataset_version, None)
    evaluate_model_version(evaluation.pk)
    first = Evaluation.objects.get(pk=evaluation.pk)
    assert first.status == Status.EVALUATED
    evaluate_model_version(evaluation.pk)
    again = Evaluation.objects.get(pk=evaluation.pk)
    assert (again.started, again.finished) == (first.started, first.finished)
    assert bytes(again.data) == bytes(first.data)


def test_a_delivery_while_another_worker_evaluates_does_nothing(version):
    evaluation = evaluating.start_evaluation(version, version.dataset_version, None)
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Status.EVALUATING)
    evaluate_model_version(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Status.EVALUATING
    assert evaluation.data is None


def test_the_time_limit_fails_it_with_its_reason(version, held_out, embedder, monkeypatch):
    def out_of_time(texts, **kw):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(embedder, "encode", out_of_time)
    evaluation = evaluating.start_evaluation(version, held_out, None)
    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Status.FAILED
    assert evaluation.error == evaluating.TIMED_OUT


def test_the_reaper_fails_stale_evaluations_and_only_those(version, settings):
    settings.PORTAL_REAPER_DEADLINE = 600
    long_ago = timezone.now() - timedelta(seconds=700)

    def make(status: int, started_seconds_ago: float | None) -> Evaluation:
        started = None
        if started_seconds_ago is not None:
            started = timezone.now() - timedelta(seconds=started_seconds_ago)
        return Evaluation.objects.create(
            model_version=version,
            dataset_version=version.dataset_version,
            status=status,
            created=long_ago,
            started=started,
        )

    stale = make(Status.EVALUATING, 601)
    lost = make(Status.QUEUED, None)
    busy = make(Status.EVALUATING, 10)
    done = make(Status.EVALUATED, 650)

    assert reaper.reap() == 2
    for evaluation in (stale, lost, busy, done):
        evaluation.refresh_from_db()
    assert stale.status == lost.status == Status.FAILED
    assert stale.error == reaper.LOST and stale.finished is not None
    assert busy.status == Status.EVALUATING
    assert done.status == Status.EVALUATED

    # A late delivery of the reaped one leaves it failed.
    evaluating.run(stale.pk)
    stale.refresh_from_db()
    assert stale.status == Status.FAILED


# The views


def test_evaluate_starts_an_evaluation(alice_client, alice, version, held_out):
    response = alice_client.post(EVALUATE, {"dataset_version": held_out.pk})
    evaluation = Evaluation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{APP}/evaluations/{evaluation.pk}/"
    assert evaluation.status == Status.QUEUED
    assert (evaluation.model_version, evaluation.dataset_version) == (version, held_out)
    assert evaluation.user == alice
    assert not evaluation.kfold


@pytest.mark.parametrize(
    "choice", ["", "abc", "-1", "1.5", "0", "999999", "²", "99999999999999999999", "foreign"]
)
def test_evaluate_refuses_a_bad_dataset_version(alice_client, bob, version, choice):
    if choice == "foreign":
        bobs = App.objects.create(owner=bob, slug="spam-filter")
        choice = make_version(bobs, "emails", [(SPAM_TEXTS[0], "spam")]).pk
    response = alice_client.post(EVALUATE, {"dataset_version": choice})
    assert response.status_code == 302
    assert response["Location"] == f"{MODEL_PAGE}?version=1#evaluate"
    assert messages_of(response) == ["Choose a dataset version to evaluate on."]
    assert not Evaluation.objects.exists()


def test_evaluate_refuses_a_version_of_another_app_of_the_same_user(alice_client, alice, version):
    other = App.objects.create(owner=alice, slug="elsewhere")
    foreign = make_version(other, "emails", [(SPAM_TEXTS[0], "spam")])
    response = alice_client.post(EVALUATE, {"dataset_version": foreign.pk})
    assert messages_of(response) == ["Choose a dataset version to evaluate on."]
    assert not Evaluation.objects.exists()


def test_evaluate_explains_an_untrained_version(alice_client, trained_model, version):
    training.start_training(trained_model)
    response = alice_client.post(
        f"{APP}/models/detector/versions/2/evaluate/",
        {"dataset_version": version.dataset_version.pk},
    )
    assert response["Location"] == f"{MODEL_PAGE}?version=2#evaluate"
    assert messages_of(response) == ["Version 2 is not trained."]
    assert not Evaluation.objects.exists()


def test_the_pages_check_ownership(client, bob, kfold):
    # Bob has an app with the same ID: the evaluation still isn't his.
    App.objects.create(owner=bob, slug="spam-filter")
    client.force_login(bob)
    pages = f"{APP}/evaluations/{kfold.pk}"
    params = dict(kfold.model_version.params)
    assert client.get(f"{pages}/").status_code == 404
    assert client.get(f"{pages}/status/").status_code == 404
    assert client.get(f"{pages}/selection/?actual=spam&predicted=spam").status_code == 404
    assert client.get(f"{pages}/selection/?concept=spam&cell=tp").status_code == 404
    assert client.post(f"{pages}/thresholds/", {"threshold-spam": "0.9"}).status_code == 404
    assert client.post(f"{pages}/thresholds/", {"target_precision": "0.9"}).status_code == 404
    assert client.post(f"{pages}/delete/").status_code == 404
    response = client.post(EVALUATE, {"dataset_version": kfold.dataset_version.pk})
    assert response.status_code == 404
    assert Evaluation.objects.count() == 1
    assert ModelVersion.objects.get().params == params


def test_the_pages_need_a_signed_in_user(client, kfold):
    response = client.get(f"{APP}/evaluations/{kfold.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_pages_render_in_every_state(alice_client, version, kfold):
    queued = evaluating.start_evaluation(version, version.dataset_version, None)
    failed = evaluating.start_evaluation(version, version.dataset_version, None)
    evaluating.fail(failed.pk, "something went wrong")
    for evaluation in (kfold, queued, failed):
        page = alice_client.get(f"{APP}/evaluations/{evaluation.pk}/")
        assert page.status_code == 200
        assert page.context["evaluation"] == evaluation
    assert alice_client.get(f"{APP}/evaluations/").status_code == 200


def test_the_results_page_shows_calibration(alice_client, kfold):
    calibration_report = kfold.metrics["calibration"]
    scores = evaluating.load_scores(kfold)
    assert calibration_report == calibration(scores.Y, scores.P)
    assert 0.0 <= calibration_report["ece"] <= 1.0
    page = alice_client.get(f"{APP}/evaluations/{kfold.pk}/").content.decode()
    assert 'id="reliability-diagram"' in page
    shown = page.split("Expected calibration error: <b>")[1].split("</b>")[0]
    assert float(shown) == pytest.approx(calibration_report["ece"], abs=0.0006)
    assert page.count("predictions at ") == len(calibration_report["bins"]) > 0
    # Evaluations stored before calibration was measured still render, without the diagram.
    metrics = {key: value for key, value in kfold.metrics.items() if key != "calibration"}
    Evaluation.objects.filter(pk=kfold.pk).update(metrics=metrics)
    page = alice_client.get(f"{APP}/evaluations/{kfold.pk}/")
    assert page.status_code == 200
    assert 'id="reliability-diagram"' not in page.content.decode()


def test_the_status_panel_reloads_the_page_once_finished(alice_client, version, kfold):
    queued = evaluating.start_evaluation(version, version.dataset_version, None)
    htmx = {"HX-Request": "true"}
    waiting = alice_client.get(f"{APP}/evaluations/{queued.pk}/status/", headers=htmx)
    assert waiting.status_code == 200
    assert b"<html" not in waiting.content
    assert "HX-Refresh" not in waiting
    done = alice_client.get(f"{APP}/evaluations/{kfold.pk}/status/", headers=htmx)
    assert done.status_code == 200
    assert done["HX-Refresh"] == "true"
    plain = alice_client.get(f"{APP}/evaluations/{kfold.pk}/status/")
    assert plain.status_code == 200
    assert "HX-Refresh" not in plain


@pytest.mark.parametrize(
    "query",
    [
        "",
        "actual=nope&predicted=spam",
        "actual=spam&predicted=nope",
        "actual=spam",
        "concept=nope&cell=tp",
        "concept=spam&cell=xx",
        "concept=spam&cell=tp&threshold=abc",
        "concept=spam&cell=tp&threshold=1.5",
        "concept=spam&cell=tp&threshold=-0.1",
        "concept=spam&cell=tp&threshold=nan",
    ],
)
def test_a_bad_selection_is_not_found(alice_client, kfold, query):
    response = alice_client.get(f"{APP}/evaluations/{kfold.pk}/selection/?{query}")
    assert response.status_code == 404


def test_an_unfinished_evaluation_has_no_selection_nor_thresholds(alice_client, version):
    queued = evaluating.start_evaluation(version, version.dataset_version, None)
    pages = f"{APP}/evaluations/{queued.pk}"
    params = dict(version.params)
    assert alice_client.get(f"{pages}/selection/?concept=spam&cell=tp").status_code == 404
    assert alice_client.post(f"{pages}/thresholds/", {"threshold-spam": "0.9"}).status_code == 404
    assert ModelVersion.objects.get().params == params


@pytest.mark.parametrize("which", ["kfold", "held_out_evaluation"])
def test_a_confusion_cell_lists_what_a_recount_finds(alice_client, request, which):
    evaluation = request.getfixturevalue(which)
    scores = evaluating.load_scores(evaluation)
    concepts = list(evaluation.model_version.concepts)
    rows = DatasetVersionRow.objects.in_bulk(scores.rows.tolist())
    matrix = evaluation.metrics["confusion_matrix"]["counts"]
    for (a, actual), (b, predicted) in itertools.product(enumerate(concepts), repeat=2):
        expected = [
            rows[pk].text
            for pk, p in zip(scores.rows.tolist(), scores.P, strict=True)
            if actual in rows[pk].positive and concepts[int(np.argmax(p))] == predicted
        ]
        response = alice_client.get(
            f"{APP}/evaluations/{evaluation.pk}/selection/",
            {"actual": actual, "predicted": predicted},
        )
        assert response.status_code == 200
        inputs = response.context["inputs"]
        assert sorted(i.text for i in inputs) == sorted(expected), (actual, predicted)
        assert response.context["total"] == len(expected) == matrix[a][b]
        # The most confident first.
        shown = [dict(i.probabilities)[predicted] for i in inputs]
        assert shown == sorted(shown, reverse=True)


@pytest.mark.parametrize("which", ["kfold", "held_out_evaluation"])
def test_a_count_at_a_threshold_lists_what_a_recount_finds(alice_client, request, which):
    evaluation = request.getfixturevalue(which)
    scores = evaluating.load_scores(evaluation)
    concepts = list(evaluation.model_version.concepts)
    rows = DatasetVersionRow.objects.in_bulk(scores.rows.tolist())
    at_half = {c["concept"]: c for c in evaluation.metrics["concepts"]}
    for threshold, (j, concept), cell in itertools.product(
        (0.0, 0.3, 0.5, 0.8, 1.0), enumerate(concepts), ("tp", "fp", "fn", "tn")
    ):
        positive = cell in ("tp", "fn")
        predicted = cell in ("tp", "fp")
        expected = []
        for pk, p in zip(scores.rows.tolist(), scores.P, strict=True):
            row = rows[pk]
            labeled = concept in row.positive
            # An input positive for another concept is a negative for this one.
            known = labeled or concept in row.negative or bool(row.positive)
            if known and labeled == positive and (p[j] >= threshold) == predicted:
                expected.append(row.text)
        response = alice_client.get(
            f"{APP}/evaluations/{evaluation.pk}/selection/",
            {"concept": concept, "cell": cell, "threshold": threshold},
        )
        assert response.status_code == 200
        found = sorted(i.text for i in response.context["inputs"])
        assert found == sorted(expected), (threshold, concept, cell)
        assert response.context["total"] == len(expected)
        if threshold == 0.5:
            assert at_half[concept][cell] == len(expected)


def test_explicit_thresholds_are_saved_into_the_version(alice_client, kfold):
    pages = f"{APP}/evaluations/{kfold.pk}"
    response = alice_client.post(
        f"{pages}/thresholds/", {"threshold-spam": "0.7", "threshold-ham": ""}
    )
    assert response.status_code == 302
    assert response["Location"] == f"{pages}/"
    (message,) = messages_of(response)
    assert "spam ≥ 0.70" in message and "ham" not in message
    inference = ModelVersion.objects.get().params["inference_params"]
    assert inference["concept_thresholds"] == {"spam": 0.7}
    assert inference["min_value"] == 0.0 and inference["max_concepts"] == 20

    alice_client.post(f"{pages}/thresholds/", {"threshold-ham": "0.25"})
    inference = ModelVersion.objects.get().params["inference_params"]
    assert inference["concept_thresholds"] == {"spam": 0.7, "ham": 0.25}


def test_thresholds_for_a_target_precision_are_saved(alice_client, held_out_evaluation):
    evaluation = held_out_evaluation
    response = alice_client.post(
        f"{APP}/evaluations/{evaluation.pk}/thresholds/", {"target_precision": "0.75"}
    )
    assert response.status_code == 302
    saved = ModelVersion.objects.get().params["inference_params"]["concept_thresholds"]
    found = evaluating.thresholds_for_precision(evaluation, 0.75)
    assert saved == {c: t for c, t in found.items() if t is not None}
    assert saved

    # Recounted from the scores: the lowest step of 0.01 whose precision reaches the target.
    scores = evaluating.load_scores(evaluation)
    Y = evaluating.known_labels(scores.Y)

    def precision(j: int, threshold: float) -> float | None:
        known = Y[:, j] != -1
        predicted = scores.P[known, j] >= threshold
        if not predicted.any():
            return None
        return float((Y[known, j][predicted] == 1).mean())

    for j, concept in enumerate(evaluation.model_version.concepts):
        if concept not in saved:
            continue
        assert precision(j, saved[concept]) >= 0.75
        for k in range(round(saved[concept] * 100)):
            below = precision(j, k / 100)
            assert below is None or below < 0.75


@pytest.mark.parametrize(
    "data",
    [
        {"threshold-spam": "abc"},
        {"threshold-spam": "1.5"},
        {"threshold-spam": "-0.1"},
        {"threshold-spam": "nan"},
        {"threshold-spam": "0.5", "threshold-ham": "2"},
        {"target_precision": "abc"},
        {"target_precision": "0"},
        {"target_precision": "1.5"},
        {"threshold-nope": "0.5"},
        {},
    ],
)
def test_bad_thresholds_save_nothing(alice_client, kfold, data):
    params = ModelVersion.objects.get().params
    response = alice_client.post(f"{APP}/evaluations/{kfold.pk}/thresholds/", data)
    assert response.status_code == 302
    assert response["Location"] == f"{APP}/evaluations/{kfold.pk}/"
    (message,) = messages_of(response)
    assert message.startswith("Nothing was saved:")
    assert ModelVersion.objects.get().params == params


def test_saved_thresholds_hide_concepts_from_predictions(alice_client, trained_model, kfold):
    def shown() -> tuple[dict[str, float], dict[str, float]]:
        (output,) = prediction.predict(trained_model, [SPAMMY]).outputs
        response = alice_client.post(
            API, json.dumps({"texts": [SPAMMY]}), content_type="application/json"
        )
        assert response.status_code == 200, response.content
        (answer,) = response.json()["outputs"]
        return {c.id: c.value for c in output}, {c["id"]: c["value"] for c in answer["concepts"]}

    before, _ = shown()
    assert set(before) == {"spam", "ham"}
    spam = before["spam"]
    thresholds = f"{APP}/evaluations/{kfold.pk}/thresholds/"

    alice_client.post(thresholds, {"threshold-spam": f"{(spam + 1) / 2:.4f}"})
    page, api = shown()
    assert set(page) == set(api) == {"ham"}

    alice_client.post(thresholds, {"threshold-spam": f"{spam / 2:.4f}"})
    page, api = shown()
    assert set(page) == set(api) == {"spam", "ham"}


def test_delete_removes_it(alice_client, kfold):
    pages = f"{APP}/evaluations/{kfold.pk}"
    assert alice_client.get(f"{pages}/delete/").status_code == 405
    response = alice_client.post(f"{pages}/delete/")
    assert response.status_code == 302
    assert response["Location"] == f"{MODEL_PAGE}#evaluations"
    assert messages_of(response) == ["The evaluation was deleted."]
    assert not Evaluation.objects.exists()
    assert ModelVersion.objects.get().status == ModelVersion.Status.TRAINED
    assert alice_client.get(f"{pages}/").status_code == 404


def test_deleting_the_dataset_version_deletes_its_evaluations(version, held_out_evaluation):
    held_out_evaluation.dataset_version.delete()
    assert not Evaluation.objects.exists()
    assert TrainableModel.objects.get().versions.count() == 1


# Inputs the model was trained on, in another dataset version


def test_a_version_holding_every_training_input_is_not_called_held_out(version, alice_client):
    dataset = version.dataset_version.dataset
    later = versions.create_version(dataset)  # version 2: the same ten inputs
    versions.snapshot(later.pk)
    later.refresh_from_db()
    page = alice_client.get(MODEL_PAGE).content.decode()
    option = page.split(f'<option value="{later.pk}"')[1].split("</option>")[0]
    assert "not held-out: every input was in the training data" in option
    assert "held-out test set" not in option
    evaluation = evaluated(version, later)
    assert (evaluation.seen, evaluation.total) == (10, 10)
    assert evaluation.method == "not held-out: every input was in the training data"
    assert evaluation.overlap == "10 of 10 inputs were in the training data"
    results = alice_client.get(f"{APP}/evaluations/{evaluation.pk}/").content.decode()
    assert "10 of 10 inputs were in the training data" in results
    assert "how well the model remembers its examples" in results
    listed = alice_client.get(f"{APP}/evaluations/").content.decode()
    assert "not held-out" in listed and "10 of 10 inputs were in the training data" in listed
    api_url = f"/api/v1/apps/spam-filter/models/detector/versions/1/evaluations/{evaluation.pk}"
    api = alice_client.get(api_url).json()
    assert (api["seen_in_training"], api["total_inputs"], api["unseen_only"]) == (10, 10, False)
    assert api["overlap"] == "10 of 10 inputs were in the training data"
    with pytest.raises(evaluating.EvaluationError, match="no input is left to score"):
        evaluating.start_evaluation(version, later, None, unseen_only=True)


def test_only_the_inputs_not_trained_on_can_be_scored(version, alice_client):
    app = version.model.app
    # Two inputs of the training data, with their labels (labels belong to the input).
    mixed = make_version(app, "mixed", [*HELD_OUT, (SPAM_TEXTS[0], None), (HAM_TEXTS[0], None)])
    page = alice_client.get(MODEL_PAGE).content.decode()
    option = page.split(f'<option value="{mixed.pk}"')[1].split("</option>")[0]
    assert "2 of 10 in the training data" in option
    assert "Score only the inputs not in the training data" in page
    everything = evaluated(version, mixed)
    assert (everything.seen, everything.total, everything.metrics["summary"]["n_rows"]) == (
        2,
        10,
        10,
    )
    assert everything.method == "partly held-out test set"
    response = alice_client.post(EVALUATE, {"dataset_version": mixed.pk, "unseen_only": "1"})
    unseen = Evaluation.objects.get(unseen_only=True)
    assert response.url == f"{APP}/evaluations/{unseen.pk}/"
    evaluating.run(unseen.pk)
    unseen.refresh_from_db()
    assert unseen.status == Status.EVALUATED, unseen.error
    assert unseen.metrics["summary"]["n_rows"] == len(HELD_OUT)
    assert unseen.method == "held-out inputs only"
    assert (
        unseen.overlap == "2 of 10 inputs were in the training data; only the other 8 were scored"
    )
    scored = evaluating.load_scores(unseen)
    texts = set(
        DatasetVersionRow.objects.filter(pk__in=scored.rows.tolist()).values_list("text", flat=True)
    )
    assert texts == {text for text, _ in HELD_OUT}


def test_cross_validation_refuses_unseen_only(version):
    with pytest.raises(evaluating.EvaluationError, match="Cross-validation already scores"):
        evaluating.start_evaluation(version, version.dataset_version, None, unseen_only=True)
    assert not Evaluation.objects.exists()


def test_a_held_out_set_says_nothing_of_overlap(held_out_evaluation):
    assert (held_out_evaluation.seen, held_out_evaluation.total) == (0, len(HELD_OUT))
    assert held_out_evaluation.method == "held-out test set"
    assert held_out_evaluation.overlap == ""
