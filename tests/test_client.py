"""The Python client and the API walkthrough, against a live server and a real worker."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from portal.client import ApiError, Client, _without_label_columns
from portal.models import ApiToken, Input
from tests.conftest import HAM_TEXTS, SPAM_TEXTS

# The live server shares the test database only with committed transactions.
pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
MORE_SPAM = [
    "You are a lucky winner! Claim your free iPhone now by replying WIN.",
    "Exclusive offer: get 90% off designer watches, today only, click here!",
    "Your account has been credited with a $500 cash bonus, call to redeem.",
    "Earn money fast working from home, no experience needed, sign up now!",
    "Final notice: claim your guaranteed prize before midnight, text CLAIM.",
]
MORE_HAM = [
    "Could you send me the slides from this morning's meeting?",
    "The kids had fun at the park, we'll be back around six.",
    "Don't forget the dentist appointment on Thursday at 3pm.",
    "I finished the book you lent me, it was great. Coffee soon?",
    "Mum says dinner is at seven on Sunday, can you bring dessert?",
]
TEST_SPAM = [
    "Congratulations! You've won a luxury holiday. Call now to claim your prize!",
    "URGENT: your free gift card is waiting, reply YES to receive $1000.",
]
TEST_HAM = [
    "Let's meet at the library after class to finish the project.",
    "Thanks for dinner last night, it was lovely to see you both.",
]
OBVIOUS_SPAM = "WIN a FREE prize now!!! Call to claim your cash reward today"
OBVIOUS_HAM = "Are you coming to the family lunch on Sunday?"


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["input", "concepts"])
        writer.writerows(rows)
    return path


def labeled(spam: list[str], ham: list[str]) -> list[tuple[str, str]]:
    return [(t, "spam") for t in spam] + [(t, "ham") for t in ham]


@pytest.fixture
def train_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "train.csv", labeled(SPAM_TEXTS + MORE_SPAM, HAM_TEXTS + MORE_HAM))


@pytest.fixture
def key(alice) -> str:
    return ApiToken.issue(alice, "tests")[1]


def top(concepts: list[dict]) -> str:
    return max(concepts, key=lambda c: c["value"])["id"]


def test_the_walkthrough_through_the_client(
    live_server, celery_worker, settings, key, train_csv, tmp_path
):
    # Small enough to force the background import (202 and a job to poll) for train.csv.
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 15
    client = Client(live_server.url, key, poll_interval=0.1)

    app = client.create_app("demo_train", description="spam or not")
    assert [a["id"] for a in client.list_apps()] == ["demo_train"]
    dataset = app.create_dataset("text_dataset")
    upload = dataset.upload_from_csv(train_csv, labels=True)
    assert upload["status"] == "DONE"  # the finished background job
    assert (upload["created"], upload["skipped"]) == (20, 0)
    version_id = dataset.create_version()
    assert version_id == "1"
    assert dataset.info()["versions"][0]["status"] == "READY"

    assert app.list_trainable_model_types() == ["embedding-classifier"]
    model = app.create_model("model_text_embedder", model_type_id="embedding-classifier")
    concepts = sorted(c["id"] for c in app.list_concepts())
    assert concepts == ["ham", "spam"]
    params = model.get_params()
    assert params["dataset_id"] == "" and params["concepts"] == []
    with pytest.raises(ValueError, match="Invalid params: datset_id"):
        model.update_params(datset_id="text_dataset")
    with pytest.raises(ApiError, match=r"Invalid params: train_params\.bogus") as refused:
        model.update_params(train_params={"bogus": 1})
    assert refused.value.status == 400
    params = model.update_params(
        dataset_id="text_dataset",
        dataset_version_id=version_id,
        concepts=concepts,
        train_params={"enrich_dataset": "Disabled"},
    )
    assert params["dataset_id"] == "text_dataset"
    assert params["train_params"]["base_embed_model"] == "all-MiniLM-L6-v2-onnx"  # merged

    model_version_id = model.train()
    status = model.wait_until_trained(model_version_id, timeout=300)
    assert status["name"] == "MODEL-TRAINED"
    assert status["code"] == 21100
    assert "fitted in" in model.training_status(model_version_id, training_logs=True)["logs"]

    spam, ham = model.predict_texts([OBVIOUS_SPAM, OBVIOUS_HAM])
    assert top(spam) == "spam" and top(ham) == "ham"
    assert top(model.predict_by_bytes(OBVIOUS_SPAM.encode(), input_type="text")) == "spam"

    train_eval = model.evaluate(
        dataset_id="text_dataset", dataset_version_id=version_id, eval_id="one", use_kfold=True
    )
    assert train_eval["status"]["name"] in ("MODEL-QUEUED-FOR-EVALUATION", "MODEL-EVALUATING")
    one = model.wait_for_evaluation("one", timeout=300)
    assert one["status"]["name"] == "MODEL-EVALUATED"
    assert one["use_kfold"] is True
    assert one["summary"]["macro_avg_roc_auc"] > 0.8
    assert {c["concept"] for c in one["per_concept"]} == {"spam", "ham"}

    test_dataset = app.create_dataset("test_text_dataset")
    test_rows = labeled(TEST_SPAM, TEST_HAM)
    test_csv = write_csv(tmp_path / "test.csv", test_rows)
    assert test_dataset.upload_from_csv(test_csv) == {"created": 4, "skipped": 0}  # 201
    test_version_id = test_dataset.create_version()
    model.evaluate(dataset_id="test_text_dataset", eval_id="two")
    two = model.wait_for_evaluation("two", timeout=300)
    assert two["status"]["name"] == "MODEL-EVALUATED"
    assert (two["use_kfold"], two["dataset_version_id"]) == (False, test_version_id)
    assert model.get_eval_by_id(two["id"])["summary"] == two["summary"]
    # Another handle finds an evaluation by the name it was given, through the server.
    again = client.app("demo_train").model("model_text_embedder").get_eval_by_id("one")
    assert (again["id"], again["eval_id"]) == (one["id"], "one")

    comparison = app.compare([one, two])
    compared = {one["id"], two["id"]}
    assert {e["id"] for e in comparison["evaluations"]} == compared
    assert {c["concept"] for c in comparison["concepts"]} == {"spam", "ham"}
    for concept in comparison["concepts"]:
        assert {row["evaluation_id"] for row in concept["rows"]} == compared
        assert all(row["metrics"]["f1"] is not None for row in concept["rows"])


def test_texts_and_unlabeled_csv_uploads(live_server, celery_worker, key, tmp_path):
    client = Client(live_server.url, key, poll_interval=0.1)
    app = client.create_app("uploads")
    dataset = app.create_dataset("mixed")
    answer = dataset.upload_texts(
        ["Win a prize now!", "Lunch at noon?"], concepts=[["spam"], ["ham"]]
    )
    assert answer == {"created": 2, "skipped": 0}
    with pytest.raises(ValueError, match="one list of concept IDs per text"):
        dataset.upload_texts(["a", "b"], concepts=[["spam"]])

    unlabeled = write_csv(tmp_path / "unlabeled.csv", labeled(TEST_SPAM, TEST_HAM))
    assert dataset.upload_from_csv(unlabeled, labels=False)["created"] == 4
    counts = {c["id"]: c["positive_count"] for c in app.list_concepts()}
    assert counts == {"spam": 1, "ham": 1}  # the CSV's labels stayed behind
    assert Input.objects.filter(text=TEST_SPAM[0], annotations__isnull=True).exists()


def test_errors_raise_api_error(live_server, key):
    client = Client(live_server.url, key)
    with pytest.raises(ApiError) as missing:
        client.app("nope").list_concepts()
    assert missing.value.status == 404
    assert "isn't yours" in missing.value.message
    client.create_app("taken")
    with pytest.raises(ApiError) as taken:
        client.create_app("taken")
    assert taken.value.status == 400
    with pytest.raises(ApiError) as refused:
        Client(live_server.url, "tcp_wrong").list_apps()
    assert refused.value.status == 401
    assert "authentication required" in str(refused.value)


def test_a_revoked_key_gets_401_on_a_post(live_server, alice, key):
    ApiToken.objects.update(revoked=timezone.now())
    with pytest.raises(ApiError) as refused:
        Client(live_server.url, key).create_app("after-revoke")
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("input,concepts", "input"),
        ("inputid;input;concepts;negative_concepts", "inputid;input"),
        ("text,label", "text"),
        (
            "input.id,input.data.text.raw,input.data.concepts[0].id,input.data.concepts[0].value",
            "input.id,input.data.text.raw",
        ),
    ],
)
def test_labels_false_drops_the_label_columns(header, kept):
    delimiter = ";" if ";" in header else ","
    width = header.count(delimiter) + 1
    row = delimiter.join(f"v{i}" for i in range(width))
    out = _without_label_columns(f"{header}\n{row}\n".encode()).decode()
    assert out.splitlines() == [
        kept,
        delimiter.join(f"v{i}" for i in range(kept.count(delimiter) + 1)),
    ]


def test_the_walkthrough_script(live_server, celery_worker, alice, key, train_csv, tmp_path):
    # All test texts occur in the training CSV, like the walkthrough's own test_imdb.csv.
    test_csv = write_csv(tmp_path / "test.csv", labeled(SPAM_TEXTS[:3], HAM_TEXTS[:3]))
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "api_walkthrough.py"),
            "--url",
            live_server.url,
            "--token",
            key,
            "--enrich-dataset",
            "Disabled",
            "--poll-interval",
            "0.2",
            "--timeout",
            "300",
            str(train_csv),
            str(test_csv),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in (
        "Step 1: App creation",
        "Trainable model types: ['embedding-classifier']",
        "Available concepts: ['ham', 'spam']",
        "'dataset_id': 'text_dataset'",
        "'code': 21100, 'name': 'MODEL-TRAINED'",
        "Input: 'This is a great place to work'",
        "Evaluation 'one' on text_dataset v1 (5-fold cross-validation)",
        "Evaluation 'two' on test_text_dataset v1 (not held-out: every input was in the training",
        "macro_avg_roc_auc: ",
        "the test set overlaps the training set",
        "Total Labeled",
        "Dataset:test_text_dataset",
    ):
        assert expected in out, out
