import json
from typing import Any

import pytest
from django.test import Client

from portal import evaluating, training
from portal.models import (
    DEFAULT_BASE_MODEL,
    ApiToken,
    App,
    Dataset,
    DatasetVersion,
    Evaluation,
    ModelVersion,
    TrainableModel,
    default_params,
)
from tests.conftest import HAM_TEXTS, SPAM_TEXTS
from tests.test_evaluations import HELD_OUT, make_version
from tests.test_tasks import wait_for

# Committed transactions: training and the queue act on commit, from threads of their own.
pytestmark = pytest.mark.django_db(transaction=True)

APP = "/api/v1/apps/spam-filter"
MODEL = f"{APP}/models/detector"
TYPE = "embedding-classifier"
QUEUED = {
    "code": 21103,
    "name": "MODEL-QUEUED-FOR-TRAINING",
    "description": "Model is queued for training",
}


class Api:
    """The API as a client sees it, with a real token of `user`."""

    def __init__(self, user) -> None:
        _, key = ApiToken.issue(user, "tests")
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Token {key}"}

    def get(self, path: str, **query: str):
        return self.client.get(path, query, **self.auth)

    def post(self, path: str, body: Any = None):
        data = "" if body is None else json.dumps(body)
        return self.client.post(path, data, content_type="application/json", **self.auth)

    def patch(self, path: str, body: Any):
        data = body if isinstance(body, str) else json.dumps(body)
        return self.client.patch(path, data, content_type="application/json", **self.auth)

    def send(self, method: str, path: str, body: Any = None):
        if method == "GET":
            return self.get(path)
        return self.post(path, body) if method == "POST" else self.patch(path, body)


@pytest.fixture
def api(alice) -> Api:
    return Api(alice)


@pytest.fixture
def bob_api(bob) -> Api:
    return Api(bob)


def evaluated(version: ModelVersion, dataset_version: DatasetVersion) -> Evaluation:
    """An evaluation run in this process, as the worker runs it."""
    evaluation = Evaluation.objects.create(
        model_version=version,
        dataset_version=dataset_version,
        kfold=dataset_version.pk == version.dataset_version_id,
    )
    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.EVALUATED, evaluation.error
    return evaluation


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.content
    return response.json()["error"]


def poll(api: Api, path: str, codes: set[int]) -> dict:
    """GET `path` until its status code is one of `codes`; the last answer."""
    answers: list[dict] = []

    def done() -> bool:
        answers.append(api.get(path).json())
        return answers[-1]["status"]["code"] in codes

    assert wait_for(done, timeout=90), answers[-1]
    return answers[-1]


# The whole path, on a real worker


def test_a_client_builds_trains_evaluates_and_compares(api, alice, embedder, celery_worker):
    app = App.objects.create(owner=alice, slug="spam-filter")
    make_version(app, "emails", [(t, "spam") for t in SPAM_TEXTS] + [(t, "ham") for t in HAM_TEXTS])
    make_version(app, "held-out", HELD_OUT)

    created = api.post(
        f"{APP}/models", {"id": "detector", "model_type_id": TYPE, "description": "Spam or not"}
    )
    assert created.status_code == 201, created.content
    assert created.json()["id"] == "detector"
    params = api.patch(
        f"{MODEL}/params",
        {
            "dataset_id": "emails",
            "dataset_version_id": "1",
            "concepts": ["spam", "ham"],
            # Embedding the background corpus takes seconds per fresh test database.
            "train_params": {"enrich_dataset": "Disabled"},
        },
    )
    assert params.status_code == 200, params.content
    assert params.json()["train_params"]["base_embed_model"] == "all-MiniLM-L6-v2-onnx"

    queued = api.post(f"{MODEL}/versions")
    assert queued.status_code == 202, queued.content
    assert queued.json()["id"] == "1"
    assert queued.json()["status"] == QUEUED
    assert "log" not in queued.json()

    version = poll(api, f"{MODEL}/versions/1", {21100, 21106})
    assert version["status"]["name"] == "MODEL-TRAINED", version["error"]
    assert (version["progress"], version["stage"], version["error"]) == (1.0, "Trained", "")
    assert (version["dataset_id"], version["dataset_version_id"]) == ("emails", "1")
    assert version["concepts"] == ["spam", "ham"]
    assert version["params"] == params.json()
    timings = version["timings"]
    assert timings["embed_seconds"] >= 0 and timings["fit_seconds"] >= 0
    assert timings["created"] <= timings["started"] <= timings["finished"]
    with_log = api.get(f"{MODEL}/versions/1", logs="true").json()
    assert "10 inputs" in with_log["log"] and "fitted in" in with_log["log"]
    assert with_log["log"] == ModelVersion.objects.get().log
    listed = api.get(f"{MODEL}/versions").json()
    assert [v["id"] for v in listed] == ["1"] and "log" not in listed[0]
    assert api.get(f"{MODEL}/versions", logs="true").json()[0]["log"] == with_log["log"]

    evaluations = f"{MODEL}/versions/1/evaluations"
    kfold = api.post(evaluations, {"dataset_id": "emails", "use_kfold": True})
    held_out = api.post(evaluations, {"dataset_id": "held-out", "dataset_version_id": "1"})
    assert (kfold.status_code, held_out.status_code) == (202, 202), held_out.content
    assert kfold.json()["status"]["name"] == "MODEL-QUEUED-FOR-EVALUATION"
    assert (kfold.json()["use_kfold"], held_out.json()["use_kfold"]) == (True, False)
    assert kfold.json()["summary"] is None

    results = {}
    for answer in (kfold, held_out):
        pk = answer.json()["id"]
        results[pk] = poll(api, f"{evaluations}/{pk}", {21300, 21317})
        assert results[pk]["status"]["code"] == 21300, results[pk]["error"]
        stored = Evaluation.objects.get(pk=pk).metrics
        summary = results[pk]["summary"]
        assert summary == {
            "threshold": 0.5,
            "macro_avg_roc_auc": stored["summary"]["macro_roc_auc"],
            "macro_avg_f1_score": stored["summary"]["macro_f1"],
            "macro_avg_precision": stored["summary"]["macro_precision"],
            "macro_avg_recall": stored["summary"]["macro_recall"],
            "accuracy": None,
            "n_rows": stored["summary"]["n_rows"],
        }
        per_concept = results[pk]["per_concept"]
        assert [c["concept"] for c in per_concept] == ["spam", "ham"]
        for ours, theirs in zip(per_concept, stored["concepts"], strict=True):
            assert ours["total"] == theirs["n"]
            for key in ("roc_auc", "labeled", "predicted", "tp", "fn", "fp", "recall", "f1"):
                assert ours[key] == theirs[key], key
        matrix = results[pk]["confusion_matrix"]
        assert matrix["labels"] == ["spam", "ham"]
        assert matrix["counts"] == stored["confusion_matrix"]["counts"]
        spam_curves = results[pk]["curves"][0]
        assert spam_curves["concept"] == "spam"
        roc = stored["concepts"][0]["roc_curve"]
        roc_points = zip(spam_curves["roc"]["fpr"], spam_curves["roc"]["tpr"], strict=True)
        assert [list(point) for point in roc_points] == roc
        assert len(spam_curves["precision_recall"]["recall"]) == len(
            stored["concepts"][0]["pr_curve"]
        )
    kfold_result = results[kfold.json()["id"]]
    assert (kfold_result["method"], kfold_result["folds"]) == ("5-fold cross-validation", 5)
    assert results[held_out.json()["id"]]["summary"]["n_rows"] == len(HELD_OUT)
    assert len(api.get(evaluations).json()) == 2

    compared = api.post(f"{APP}/evaluations/compare", {"evaluations": list(results)})
    assert compared.status_code == 200, compared.content
    comparison = compared.json()
    assert comparison["differs"] == "dataset"
    assert [e["label"] for e in comparison["evaluations"]] == ["emails v1", "held-out v1"]
    for item in comparison["evaluations"]:
        assert item["summary"] == results[item["id"]]["summary"]
    spam = comparison["concepts"][0]
    assert spam["concept"] == "spam"
    assert [row["metrics"] for row in spam["rows"]] == [
        results[row["evaluation_id"]]["per_concept"][0] for row in spam["rows"]
    ]
    assert comparison["flips"] is None  # flips are for two versions on one dataset version


# Model types and models


def test_it_lists_the_trainable_model_types(api):
    response = api.get("/api/v1/model-types")
    assert response.status_code == 200
    (transfer_learn,) = response.json()
    assert (transfer_learn["id"], transfer_learn["title"]) == (TYPE, "Transfer Learn")
    assert (transfer_learn["input_type"], transfer_learn["trainable"]) == ("text", True)
    assert transfer_learn["params"] == default_params()
    assert transfer_learn["base_embed_models"][0] == "all-MiniLM-L6-v2-onnx"


def test_it_needs_a_token(client):
    response = client.get("/api/v1/model-types")
    assert "authentication required" in error_of(response, 401)


def test_it_creates_and_lists_models(api, alice):
    App.objects.create(owner=alice, slug="spam-filter")
    response = api.post(f"{APP}/models", {"id": "detector", "model_type_id": TYPE})
    assert response.status_code == 201, response.content
    created = response.json()
    assert {k: created[k] for k in ("id", "app_id", "model_type_id", "description")} == {
        "id": "detector",
        "app_id": "spam-filter",
        "model_type_id": TYPE,
        "description": "",
    }
    assert api.get(f"{APP}/models").json() == [created]
    assert api.get(MODEL).json() == created
    assert TrainableModel.objects.get().params == default_params()
    assert api.get(f"{MODEL}/params").json() == default_params()
    assert api.get(f"{MODEL}/versions").json() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "detector"}, "id: This app already has a model called “detector”."),
        ({"id": "DETECTOR"}, "id: This app already has a model called “DETECTOR”."),
        ({"id": "new"}, "id: “new” is reserved; choose another model ID."),
        ({"id": "two words"}, "id: Letters, digits, - and _"),
        ({"id": ""}, "id: This field is required."),
        ({"id": "x", "model_type_id": "visual-classifier"}, "unknown model type 'visual-class"),
        ({"id": "x", "model_type_id": None}, "model_type_id: Input should be a valid string"),
        ({"id": "x", "description": "d" * 501}, "description: Ensure this value has at most 500"),
        ({"id": "x", "colour": "red"}, "unknown field: colour"),
    ],
)
def test_it_refuses_bad_models(api, spam_model, body, message):
    response = api.post(f"{APP}/models", {"model_type_id": TYPE, **body})
    assert message in error_of(response, 400)
    assert TrainableModel.objects.count() == 1


def test_a_model_needs_its_type(api, spam_model):
    response = api.post(f"{APP}/models", {"id": "x"})
    assert error_of(response, 400) == "model_type_id: Field required"


# Parameters


def test_params_are_merged_key_by_key(api, spam_model):
    path = f"{MODEL}/params"
    assert api.get(path).json() == spam_model.params
    response = api.patch(
        path,
        {
            "dataset_version_id": 1,
            "concepts": ["spam", "spam"],
            "train_params": {"C": 2, "class_weight": "balanced", "head": "Hybrid"},
            "inference_params": {"min_value": 0.25, "concept_thresholds": {"spam": 0.7}},
        },
    )
    assert response.status_code == 200, response.content
    params = response.json()
    assert params == {
        "dataset_id": "emails",
        "dataset_version_id": "1",
        "concepts": ["spam"],
        "train_params": {
            "base_embed_model": DEFAULT_BASE_MODEL,
            "enrich_dataset": "Disabled",
            "C": 2.0,
            "class_weight": "balanced",
            "head": "Hybrid",
        },
        "inference_params": {
            "min_value": 0.25,
            "max_concepts": 20,
            "select_concepts": [],
            "concept_thresholds": {"spam": 0.7},
        },
        "concepts_mutually_exclusive": False,
    }
    spam_model.refresh_from_db()
    assert spam_model.params == params == api.get(path).json()

    thresholds = {"inference_params": {"concept_thresholds": {"ham": 0.4}}}
    after = api.patch(path, thresholds).json()["inference_params"]["concept_thresholds"]
    assert after == {"spam": 0.7, "ham": 0.4}
    thresholds = {"inference_params": {"concept_thresholds": {"spam": None}}}
    after = api.patch(path, thresholds).json()["inference_params"]["concept_thresholds"]
    assert after == {"ham": 0.4}
    back = api.patch(path, {"train_params": {"C": None, "class_weight": None}}).json()
    assert (back["train_params"]["C"], back["train_params"]["class_weight"]) == (None, None)
    assert api.patch(path, {}).json() == back


def test_params_missing_from_a_model_read_as_the_defaults(api, spam_model):
    TrainableModel.objects.filter(pk=spam_model.pk).update(params={"dataset_id": "emails"})
    expected = {**default_params(), "dataset_id": "emails"}
    assert api.get(f"{MODEL}/params").json() == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"colour": "red"}, "Invalid params: colour is not a parameter; the parameters are"),
        (
            {"train_params": {"learning_rate": 0.1}},
            "Invalid params: train_params.learning_rate is not a parameter",
        ),
        ({"inference_params": {"top_k": 3}}, "Invalid params: inference_params.top_k is not a"),
        ({"train_params": "fast"}, "Invalid params: train_params must be an object"),
        ({"dataset_id": 7}, "Invalid params: dataset_id must be a dataset ID"),
        ({"dataset_version_id": "v1"}, "Invalid params: dataset_version_id must be a version"),
        ({"concepts": "spam"}, "Invalid params: concepts must be a list of concept IDs"),
        ({"concepts": ["two words"]}, "concepts must be a list of concept IDs: 'two words' is"),
        ({"concepts_mutually_exclusive": "yes"}, "concepts_mutually_exclusive must be true or"),
        (
            {"train_params": {"base_embed_model": "gpt-9"}},
            "Invalid params: train_params.base_embed_model must be one of the base embedding "
            "models: all-MiniLM-L6-v2",
        ),
        (
            {"train_params": {"enrich_dataset": "Sometimes"}},
            'Invalid params: train_params.enrich_dataset must be "Automatic" or "Disabled"',
        ),
        ({"train_params": {"C": 0}}, "Invalid params: train_params.C must be null (chosen"),
        ({"train_params": {"C": -1.5}}, "train_params.C must be null (chosen automatically) or"),
        ({"train_params": {"C": "big"}}, "train_params.C must be null (chosen automatically) or"),
        ({"train_params": {"C": True}}, "train_params.C must be null (chosen automatically) or"),
        ({"train_params": {"class_weight": "heavy"}}, 'class_weight must be null or "balanced"'),
        (
            {"train_params": {"head": "Deep"}},
            'Invalid params: train_params.head must be "Auto", "Embedding only", "Hybrid"',
        ),
        ({"inference_params": {"min_value": 2}}, "min_value must be a number from 0 to 1"),
        ({"inference_params": {"min_value": "0.5"}}, "min_value must be a number from 0 to 1"),
        ({"inference_params": {"max_concepts": 0}}, "max_concepts must be a whole number from 1"),
        ({"inference_params": {"max_concepts": 2.5}}, "max_concepts must be a whole number"),
        ({"inference_params": {"max_concepts": 201}}, "a whole number from 1 to 200"),
        ({"inference_params": {"select_concepts": "spam"}}, "select_concepts must be a list"),
        (
            {"inference_params": {"concept_thresholds": {"spam": 1.5}}},
            "Invalid params: inference_params.concept_thresholds must map concept IDs to numbers "
            "from 0 to 1 (null removes a threshold): 'spam' is 1.5",
        ),
        ({"inference_params": {"concept_thresholds": [0.5]}}, "concept_thresholds must map"),
        ("[1, 2]", "the body must be a JSON object"),
        ("{", "the body is not valid JSON"),
    ],
)
def test_params_refuse_unknown_keys_and_wrong_values(api, spam_model, body, message):
    before = spam_model.params
    # A valid change beside the wrong one is not saved either.
    if isinstance(body, dict):
        body = {"concepts": ["ham"], **body}
    response = api.patch(f"{MODEL}/params", body)
    assert message in error_of(response, 400)
    spam_model.refresh_from_db()
    assert spam_model.params == before


# Training


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset_id": ""}, "Choose a dataset."),
        ({"dataset_version_id": "7"}, "Choose a version of dataset emails."),
        ({"concepts": []}, "Choose at least one concept to train."),
        ({"concepts": ["eggs"]}, "Concept 'eggs' is not in version 1 of dataset emails."),
    ],
)
def test_training_refuses_parameters_that_cannot_train(api, spam_model, change, message):
    assert api.patch(f"{MODEL}/params", change).status_code == 200
    response = api.post(f"{MODEL}/versions")
    assert error_of(response, 400) == message
    assert not ModelVersion.objects.exists()


def test_a_version_is_found_by_its_number_only(api, trained_model):
    assert api.get(f"{MODEL}/versions/1").status_code == 200
    for wrong in ("2", "v1", "0", "1.0", "99999999999"):
        response = api.get(f"{MODEL}/versions/{wrong}")
        assert "it doesn't exist, or it isn't yours" in error_of(response, 404)
    assert error_of(api.get(f"{MODEL}/versions", logs="maybe"), 400).startswith("logs:")


# Evaluations


@pytest.fixture
def held_out(trained_model) -> DatasetVersion:
    return make_version(trained_model.app, "held-out", HELD_OUT)


def test_it_evaluates_on_the_latest_ready_version_by_default(api, trained_model, alice):
    dataset = Dataset.objects.get(slug="emails")
    DatasetVersion.objects.create(dataset=dataset, number=2)  # not ready: passed over
    response = api.post(f"{MODEL}/versions/1/evaluations", {"dataset_id": "emails"})
    assert response.status_code == 202, response.content
    evaluation = response.json()
    assert (evaluation["dataset_id"], evaluation["dataset_version_id"]) == ("emails", "1")
    assert (evaluation["use_kfold"], evaluation["method"]) == (True, "cross-validation")
    assert evaluation["status"] == {
        "code": 21303,
        "name": "MODEL-QUEUED-FOR-EVALUATION",
        "description": "Model is queued for evaluation",
    }
    assert Evaluation.objects.get().user == alice
    details = api.get(f"{MODEL}/versions/1/evaluations/{evaluation['id']}").json()
    assert details["summary"] is details["per_concept"] is details["curves"] is None
    assert details["confusion_matrix"] is None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"dataset_id": "emails", "use_kfold": False},
            400,
            "use_kfold: version 1 was trained on emails v1, so a held-out evaluation needs "
            "another dataset version",
        ),
        (
            {"dataset_id": "held-out", "use_kfold": True},
            400,
            "use_kfold: k-fold cross-validation runs only on the dataset version that version 1 "
            "was trained on (emails v1); held-out v1 is scored as a held-out test set",
        ),
        ({"dataset_id": "nope"}, 404, "not found: app spam-filter has no dataset 'nope'"),
        ({"dataset_id": "emails", "dataset_version_id": 9}, 404, "emails has no version 9"),
        ({"dataset_id": "emails", "dataset_version_id": "v1"}, 400, "must be a version number"),
        ({"dataset_id": "empty"}, 400, "dataset empty has no ready version to evaluate on"),
        ({"dataset_id": "emails", "eval_id": "x" * 101}, 400, "eval_id: String should have"),
        ({"dataset_id": "emails", "folds": 3}, 400, "unknown field: folds"),
        ({"dataset_version_id": "1"}, 400, "dataset_id: Field required"),
        ({"dataset_id": "emails", "use_kfold": "often"}, 400, "use_kfold: Input should be a"),
    ],
)
def test_it_refuses_bad_evaluations(api, trained_model, held_out, body, status, message):
    Dataset.objects.create(app=trained_model.app, slug="empty")
    response = api.post(f"{MODEL}/versions/1/evaluations", body)
    assert message in error_of(response, status)
    assert not Evaluation.objects.exists()


def test_an_evaluation_keeps_the_name_it_was_given(api, trained_model):
    response = api.post(
        f"{MODEL}/versions/1/evaluations", {"dataset_id": "emails", "eval_id": "one"}
    )
    assert response.status_code == 202, response.content
    assert response.json()["eval_id"] == "one"
    (listed,) = api.get(f"{MODEL}/versions/1/evaluations").json()
    assert listed["eval_id"] == "one"


def test_an_untrained_version_is_not_evaluated(api, trained_model):
    first = trained_model.versions.get()
    ModelVersion.objects.create(
        model=trained_model,
        number=2,
        params=first.params,
        dataset_version=first.dataset_version,
        status=ModelVersion.Status.FAILED,
    )
    response = api.post(f"{MODEL}/versions/2/evaluations", {"dataset_id": "emails"})
    assert error_of(response, 400) == "Version 2 is not trained."
    assert not Evaluation.objects.exists()


def test_an_evaluation_is_read_under_its_own_version(api, trained_model, held_out):
    version = trained_model.versions.get()
    evaluation = evaluated(version, held_out)
    path = f"{MODEL}/versions/1/evaluations/{evaluation.pk}"
    assert api.get(path).json()["summary"]["n_rows"] == len(HELD_OUT)
    ModelVersion.objects.create(model=trained_model, number=2, params=version.params)
    for wrong in (
        f"{MODEL}/versions/2/evaluations/{evaluation.pk}",
        f"{MODEL}/versions/1/evaluations/{evaluation.pk + 1}",
        f"{MODEL}/versions/1/evaluations/first",
    ):
        assert api.get(wrong).status_code == 404, wrong


# Comparison


def second_version(model: TrainableModel) -> ModelVersion:
    """Version 2 of `model`, trained in this process with another C."""
    model.params["train_params"]["C"] = 0.01
    model.save(update_fields=["params"])
    version = ModelVersion.objects.create(
        model=model,
        number=2,
        params=model.params,
        dataset_version=model.versions.get(number=1).dataset_version,
        concepts=model.params["concepts"],
    )
    training.train(version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.TRAINED, version.error
    return version


def test_two_versions_on_one_dataset_version_compare_with_their_flips(api, trained_model, held_out):
    first = trained_model.versions.get()
    second = second_version(trained_model)
    before, after = evaluated(first, held_out), evaluated(second, held_out)
    response = api.post(f"{APP}/evaluations/compare", {"evaluations": [after.pk, before.pk]})
    assert response.status_code == 200, response.content
    comparison = response.json()
    assert comparison["differs"] == "model"
    assert comparison["description"] == (
        "2 model versions evaluated on dataset held-out v1: detector v1, detector v2."
    )
    assert [e["id"] for e in comparison["evaluations"]] == [before.pk, after.pk]
    assert [e["model_version_id"] for e in comparison["evaluations"]] == ["1", "2"]
    assert [c["concept"] for c in comparison["concepts"]] == ["spam", "ham"]
    flips = comparison["flips"]
    assert (flips["before_evaluation_id"], flips["after_evaluation_id"]) == (before.pk, after.pk)
    assert flips["total"] == len(flips["items"])
    assert flips["fixed"] + flips["broken"] <= flips["total"]
    a, b = evaluating.load_scores(before), evaluating.load_scores(after)
    changed = int(((a.P >= 0.5) != (b.P >= 0.5)).sum())
    assert flips["total"] == changed
    assert comparison["flips_error"] == ""


@pytest.mark.parametrize(
    ("chosen", "status", "message"),
    [
        (["kfold"], 400, "evaluations: give at least two evaluations to compare"),
        (["kfold", "kfold"], 400, "evaluations: give at least two evaluations to compare"),
        (["kfold", "queued"], 400, "only evaluated ones can be compared, not {queued} (MODEL-"),
        (["kfold", 999999], 404, "not found: evaluation 999999 of app spam-filter"),
        (["kfold", -1], 404, "not found: evaluation -1 of app spam-filter"),
        (["kfold", "copies"], 400, "evaluations: at most 8 can be compared at once"),
        ("kfold", 400, "evaluations: Input should be a valid list"),
    ],
)
def test_it_refuses_bad_comparisons(api, trained_model, chosen, status, message):
    version = trained_model.versions.get()
    kfold = evaluated(version, version.dataset_version)
    queued = Evaluation.objects.create(model_version=version, dataset_version=kfold.dataset_version)
    copies = [
        Evaluation.objects.create(
            model_version=version,
            dataset_version=kfold.dataset_version,
            status=Evaluation.Status.EVALUATED,
            metrics=kfold.metrics,
        ).pk
        for _ in range(8)
    ]
    names = {"kfold": [kfold.pk], "queued": [queued.pk], "copies": copies}
    ids = [pk for c in chosen for pk in names.get(c, [c])] if isinstance(chosen, list) else chosen
    response = api.post(f"{APP}/evaluations/compare", {"evaluations": ids})
    assert message.format(queued=queued.pk) in error_of(response, status)


# Ownership


def test_bob_finds_none_of_alices_ids(api, bob_api, bob, trained_model, held_out):
    version = trained_model.versions.get()
    kfold = evaluated(version, version.dataset_version)
    other = evaluated(version, held_out)
    evaluations = f"{MODEL}/versions/1/evaluations"
    compare = {"evaluations": [kfold.pk, other.pk]}
    calls = [
        ("GET", f"{APP}/models", None),
        ("POST", f"{APP}/models", {"id": "mine", "model_type_id": TYPE}),
        ("GET", MODEL, None),
        ("GET", f"{MODEL}/params", None),
        ("PATCH", f"{MODEL}/params", {"concepts": ["spam"]}),
        ("POST", f"{MODEL}/versions", None),
        ("GET", f"{MODEL}/versions", None),
        ("GET", f"{MODEL}/versions/1", None),
        ("POST", evaluations, {"dataset_id": "emails"}),
        ("GET", evaluations, None),
        ("GET", f"{evaluations}/{kfold.pk}", None),
        ("POST", f"{APP}/evaluations/compare", compare),
    ]
    for method, path, body in calls:
        if method == "GET":
            assert api.get(path).status_code == 200, path
        response = bob_api.send(method, path, body)
        assert "it doesn't exist, or it isn't yours" in error_of(response, 404), (method, path)

    # With an app, a model and an evaluation of his own under the same IDs, Bob still
    # reaches only his own.
    app = App.objects.create(owner=bob, slug="spam-filter")
    own = {"id": "detector", "model_type_id": TYPE}
    assert bob_api.post(f"{APP}/models", own).status_code == 201
    assert bob_api.get(f"{MODEL}/versions/1").status_code == 404
    assert bob_api.get(f"{evaluations}/{kfold.pk}").status_code == 404
    response = bob_api.post(f"{APP}/evaluations/compare", compare)
    assert f"evaluation {kfold.pk}, {other.pk} of app spam-filter" in error_of(response, 404)
    assert [m["id"] for m in bob_api.get(f"{APP}/models").json()] == ["detector"]
    assert TrainableModel.objects.get(app=app).params == default_params()

    trained_model.refresh_from_db()
    assert trained_model.params["concepts"] == ["spam", "ham"]
    assert ModelVersion.objects.count() == 1
    assert Evaluation.objects.count() == 2
