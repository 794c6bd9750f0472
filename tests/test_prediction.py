import json

import pytest

from classifier.hybrid import HybridHead, load_head
from portal import prediction, training
from portal.models import ModelVersion

# Committed transactions: the training heartbeat writes from a thread of its own.
pytestmark = pytest.mark.django_db(transaction=True)

TRY = "/apps/spam-filter/models/detector/try/"
API = "/api/v1/apps/spam-filter/models/detector/predict"
SPAMMY = "You have WON a free prize! Call now to claim your cash reward"


def test_it_answers_with_a_probability_per_concept(trained_model):
    result = prediction.predict(trained_model, [SPAMMY, "See you at lunch tomorrow?"])
    first, second = result.outputs
    assert [c.id for c in first] == ["spam", "ham"]
    assert first[0].value > 0.5
    assert {c.id for c in second} == {"spam", "ham"}
    assert dict((c.id, c.value) for c in second)["spam"] < 0.5
    assert first[0].name == "Spam"
    assert result.version.number == 1


def test_exclusive_probabilities_sum_to_one(spam_model, embedder):
    spam_model.params["concepts_mutually_exclusive"] = True
    spam_model.save()
    version = training.start_training(spam_model)
    training.train(version.pk)
    (output,) = prediction.predict(spam_model, [SPAMMY]).outputs
    assert sum(c.value for c in output) == pytest.approx(1.0, abs=1e-5)


def test_a_hybrid_head_predicts_from_the_text(spam_model, embedder):
    spam_model.params["train_params"]["head"] = "Hybrid"
    spam_model.save()
    version = training.start_training(spam_model)
    training.train(version.pk)
    version.refresh_from_db()
    head = load_head(bytes(version.head))
    assert isinstance(head, HybridHead) and head.features_ == "hybrid"
    texts = [SPAMMY, "See you at lunch tomorrow?"]
    expected = head.predict_proba(texts, embedder.encode(texts))
    for output, row in zip(prediction.predict(spam_model, texts).outputs, expected, strict=True):
        values = {c.id: c.value for c in output}
        assert [values["spam"], values["ham"]] == pytest.approx(row.tolist(), abs=1e-6)


def test_inference_settings_apply(trained_model):
    (output,) = prediction.predict(trained_model, [SPAMMY], None, {"max_concepts": 1}).outputs
    assert [c.id for c in output] == ["spam"]
    (output,) = prediction.predict(trained_model, [SPAMMY], None, {"min_value": 0.99}).outputs
    assert all(c.value >= 0.99 for c in output)
    (output,) = prediction.predict(
        trained_model, [SPAMMY], None, {"select_concepts": ["ham"]}
    ).outputs
    assert [c.id for c in output] == ["ham"]


def test_a_new_version_is_used_at_once(trained_model):
    prediction.predict(trained_model, [SPAMMY])
    version = training.start_training(trained_model)
    training.train(version.pk)
    assert prediction.predict(trained_model, [SPAMMY]).version.number == 2
    assert prediction.predict(trained_model, [SPAMMY], "1").version.number == 1


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([], "at least one text"),
        (["  "], "text 1 is empty"),
        (["x" * 100_001], "the limit is 100,000"),
        (["ok"] * 129, "at most 128 texts"),
        ("not a list", "a list of strings"),
    ],
)
def test_it_refuses_bad_texts(trained_model, texts, message):
    with pytest.raises(prediction.PredictionError, match=message):
        prediction.predict(trained_model, texts)


def test_an_untrained_model_says_so(spam_model):
    with pytest.raises(prediction.PredictionError, match="has no trained version yet"):
        prediction.predict(spam_model, ["hello"])


def test_the_box_renders_and_answers(alice_client, trained_model):
    page = alice_client.get(TRY)
    assert b"<html" in page.content and b"Your text" in page.content
    box = alice_client.get(TRY, headers={"HX-Request": "true"})
    assert b"<html" not in box.content and b'id="try-box"' in box.content
    answer = alice_client.post(TRY, {"text": SPAMMY}, headers={"HX-Request": "true"})
    body = answer.content.decode()
    assert body.index("Spam") < body.index("Ham")
    assert "Model version v1" in body
    plain = alice_client.post(TRY, {"text": SPAMMY})
    assert b"<html" in plain.content and b"Model version v1" in plain.content


def test_the_box_explains_an_empty_text(alice_client, trained_model):
    answer = alice_client.post(TRY, {"text": "   "}, headers={"HX-Request": "true"})
    assert b"Type a text first." in answer.content


def test_the_box_and_the_api_share_the_uploads_text_limit(alice_client, trained_model, settings):
    settings.PORTAL_MAX_TEXT_LENGTH = 40
    answer = alice_client.post(TRY, {"text": "x" * 41}, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert "Your text is 41 characters long; the limit is 40." in answer.content.decode()
    assert "Model version" not in answer.content.decode()
    fits = alice_client.post(TRY, {"text": "y" * 40}, headers={"HX-Request": "true"})
    assert "Model version v1" in fits.content.decode()
    response = alice_client.post(
        API, json.dumps({"texts": ["x" * 41]}), content_type="application/json"
    )
    assert response.status_code == 400
    assert "the limit is 40" in response.json()["error"]
    upload = alice_client.get("/apps/spam-filter/inputs/upload/")
    assert "a text may have up to 40 characters" in upload.content.decode()


def test_the_api_predicts(alice_client, trained_model):
    response = alice_client.post(
        API, json.dumps({"texts": [SPAMMY, "lunch?"]}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model_version_id"] == "1"
    assert body["outputs"][0]["concepts"][0]["id"] == "spam"
    assert set(body["outputs"][1]["concepts"][0]) == {"id", "name", "value"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"texts": ["a"] * 129}), "at most 128 texts"),
        (json.dumps({"texts": ["a"], "extra": 1}), "unknown field: extra"),
        (json.dumps({"texts": ["a"], "version_id": "7"}), "no trained version 7"),
        (json.dumps({"texts": ["a"], "inference_params": {"min_value": 3}}), "between 0 and 1"),
    ],
)
def test_the_api_refuses_bad_requests(alice_client, trained_model, payload, message):
    response = alice_client.post(API, payload, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_the_api_needs_a_signed_in_owner(client, trained_model, bob):
    payload = json.dumps({"texts": ["hi"]})
    assert client.post(API, payload, content_type="application/json").status_code == 401
    client.force_login(bob)
    response = client.post(API, payload, content_type="application/json")
    assert response.status_code == 404
    assert "error" in response.json()


def test_the_box_checks_ownership(client, trained_model, charlie):
    client.force_login(charlie)
    assert client.get(TRY).status_code == 404
    assert client.post(TRY, {"text": "hi"}).status_code == 404
    assert ModelVersion.objects.count() == 1


BATCH = "/apps/spam-filter/models/detector/batch/"


def test_a_batch_file_is_predicted_in_the_background(alice_client, trained_model, celery_worker):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.models import PredictionJob
    from tests.test_tasks import wait_for

    content = f"inputid,input\na1,{SPAMMY}\na2,lunch tomorrow?\n".encode()
    upload = SimpleUploadedFile("texts.csv", content, content_type="text/csv")
    response = alice_client.post(BATCH, {"file": upload, "version": "1"})
    assert response.status_code == 302
    job = PredictionJob.objects.get()
    assert wait_for(lambda: PredictionJob.objects.get(pk=job.pk).is_finished, timeout=60)
    job.refresh_from_db()
    assert job.status == PredictionJob.Status.DONE, job.errors
    fragment = alice_client.get(f"{BATCH}{job.pk}/", headers={"HX-Request": "true"})
    assert b"every 1s" not in fragment.content and b"Download results" in fragment.content
    result = alice_client.get(f"{BATCH}{job.pk}/result.csv")
    lines = b"".join(result.streaming_content if result.streaming else [result.content])
    rows = lines.decode().splitlines()
    assert rows[0] == "inputid,input,top_concept,spam,ham"
    assert rows[1].startswith("a1,") and ",spam," in rows[1]


def test_a_bad_batch_file_fails_with_the_reason(trained_model):
    from portal import batch
    from portal.models import PredictionJob

    version = trained_model.versions.get()
    job = PredictionJob.objects.create(model_version=version, filename="x.csv", data=b"a,b\n1,2\n")
    batch.run(job.pk)
    job.refresh_from_db()
    assert job.status == PredictionJob.Status.FAILED
    assert "no text column" in job.errors[0]


def test_a_batch_result_keeps_the_files_own_columns(trained_model):
    import csv
    import io

    from portal import batch
    from portal.models import PredictionJob

    content = (
        f'text,label,note\n"{SPAMMY}",spam,first\n"lunch, tomorrow?",ham,\n'
        '"two\nlines",ham,"a, b"\n'
    )
    version = trained_model.versions.get()
    job = PredictionJob.objects.create(
        model_version=version, filename="x.csv", data=content.encode()
    )
    batch.run(job.pk)
    job.refresh_from_db()
    assert job.status == PredictionJob.Status.DONE, job.errors
    rows = list(csv.reader(io.StringIO(bytes(job.result).decode())))
    assert rows[0] == ["text", "label", "note", "top_concept", "spam", "ham"]
    assert rows[1][:4] == [SPAMMY, "spam", "first", "spam"]
    assert rows[2][:3] == ["lunch, tomorrow?", "ham", ""]
    assert rows[3][:3] == ["two\nlines", "ham", "a, b"]
    assert float(rows[1][4]) > 0.5


def test_our_columns_never_hide_the_files(trained_model):
    from portal import batch
    from portal.models import PredictionJob

    job = PredictionJob.objects.create(
        model_version=trained_model.versions.get(),
        filename="x.csv",
        data=b"text,spam\nwin money now,yes\n",
    )
    batch.run(job.pk)
    job.refresh_from_db()
    header = bytes(job.result).decode().splitlines()[0]
    assert header == "text,spam,top_concept,spam (predicted),ham"


def test_batch_pages_check_ownership(client, trained_model, charlie):
    from portal.models import PredictionJob

    job = PredictionJob.objects.create(
        model_version=trained_model.versions.get(), filename="x.csv", data=b"", result=b"x"
    )
    client.force_login(charlie)
    for url in (BATCH, f"{BATCH}{job.pk}/", f"{BATCH}{job.pk}/result.csv"):
        assert client.get(url).status_code == 404


def test_the_box_applies_settings_changed_for_the_trial(alice_client, trained_model):
    box = alice_client.get(TRY, headers={"HX-Request": "true"})
    assert b'name="select_concepts" value="ham"' in box.content
    answer = alice_client.post(
        TRY, {"text": SPAMMY, "select_concepts": ["ham"]}, headers={"HX-Request": "true"}
    )
    assert b"Ham" in answer.content and b"Spam" not in answer.content
    answer = alice_client.post(
        TRY, {"text": SPAMMY, "max_concepts": "1"}, headers={"HX-Request": "true"}
    )
    assert answer.content.count(b'class="concept-name"') == 1
