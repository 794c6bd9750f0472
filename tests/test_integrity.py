"""Data integrity: concurrent label edits, immutable dataset versions, exact deletions."""

import json
import re
import threading

import pytest
from django.db import connection
from django.test import Client

from portal import labels, versions
from portal.models import (
    Annotation,
    ApiToken,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    DatasetVersionRow,
    Embedding,
    Evaluation,
    ImportJob,
    Input,
    ModelVersion,
    PredictionJob,
    TrainableModel,
    default_params,
    text_hash,
)

POS, NEG = Annotation.POSITIVE, Annotation.NEGATIVE
HTMX = {"HX-Request": "true"}
Membership = Dataset.inputs.through


def add_input(app, text, *, datasets=(), labels=(), external_id=""):
    item = Input.objects.create(
        app=app, text=text, text_hash=text_hash(text), external_id=external_id
    )
    for dataset in datasets:
        dataset.inputs.add(item)
    for concept, value in labels:
        Annotation.objects.create(input=item, concept=concept, value=value)
    return item


def labels_of(item):
    return dict(item.annotations.values_list("concept__slug", "value"))


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


class Api:
    def __init__(self, user):
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Token {ApiToken.issue(user, 't')[1]}"}

    def get(self, path):
        return self.client.get("/api/v1" + path, **self.auth)

    def patch(self, path, body):
        data = json.dumps(body)
        return self.client.patch(
            "/api/v1" + path, data, content_type="application/json", **self.auth
        )

    def delete(self, path):
        return self.client.delete("/api/v1" + path, **self.auth)


# Two tabs or clients editing the labels of one input


def revision_in(html: str, item) -> int:
    """The revision that the input's row on a page carries in its forms."""
    row = re.search(rf'id="input-{item.pk}".*?</li>', html, re.S)[0]
    (revision,) = set(re.findall(r'name="revision" value="(\d+)"', row))
    return int(revision)


def click(client, item, concept, value, revision):
    data = {"concept": concept, "value": value, "revision": revision}
    return client.post(f"/apps/spam-filter/inputs/{item.pk}/label/", data, headers=HTMX)


@pytest.mark.django_db
def test_two_tabs_labeling_one_input_lose_nothing_silently(app, spam, ham, alice):
    item = add_input(app, "Win a prize now")
    first, second = signed_in(alice), signed_in(alice)
    seen_first = revision_in(first.get("/apps/spam-filter/inputs/").text, item)
    seen_second = revision_in(second.get("/apps/spam-filter/inputs/").text, item)

    assert "Saved" in click(first, item, "ham", "1", seen_first).text
    stale = click(second, item, "spam", "1", seen_second)

    assert stale.status_code == 200
    assert "Changed elsewhere since you opened it" in stale.text
    assert "Saved" not in stale.text
    assert 'data-concept="ham"' in stale.text  # the current state, with the first tab's label
    assert labels_of(item) == {"ham": POS}
    # The row now carries the current revision: clicking again applies the change.
    assert "Saved" in click(second, item, "spam", "1", revision_in(stale.text, item)).text
    assert labels_of(item) == {"ham": POS, "spam": POS}


@pytest.mark.django_db
def test_a_tab_and_an_api_client_refuse_each_others_stale_changes(app, spam, ham, alice):
    item = add_input(app, "Win a prize now")
    api, tab = Api(alice), signed_in(alice)
    url = f"/apps/spam-filter/inputs/{item.pk}"
    api_revision = api.get("/apps/spam-filter/inputs").json()["inputs"][0]["revision"]
    tab_revision = revision_in(tab.get("/apps/spam-filter/inputs/").text, item)

    assert "Saved" in click(tab, item, "spam", "1", tab_revision).text
    response = api.patch(url, {"concepts": ["ham"], "revision": api_revision})
    assert response.status_code == 409
    assert "changed meanwhile" in response.json()["error"]
    assert labels_of(item) == {"spam": POS}

    current = api.get("/apps/spam-filter/inputs").json()["inputs"][0]
    response = api.patch(url, {"negative_concepts": ["ham"], "revision": current["revision"]})
    assert response.status_code == 200
    assert "Changed elsewhere" in click(tab, item, "spam", "0", tab_revision + 1).text
    assert labels_of(item) == {"spam": POS, "ham": NEG}


@pytest.mark.django_db
def test_without_a_revision_the_last_api_write_wins_and_is_shown(app, spam, ham, alice):
    item = add_input(app, "Win a prize now")
    first, second = Api(alice), Api(alice)
    url = f"/apps/spam-filter/inputs/{item.pk}"
    assert first.patch(url, {"concepts": ["spam"]}).status_code == 200
    response = second.patch(url, {"concepts": ["ham"]})
    assert response.status_code == 200
    assert (response.json()["concepts"], response.json()["revision"]) == (["ham"], 3)
    assert labels_of(item) == {"ham": POS}


@pytest.mark.django_db(transaction=True)
def test_of_simultaneous_edits_from_one_revision_exactly_one_applies(app, alice):
    item = add_input(app, "Win a prize now")
    concepts = [Concept.objects.create(app=app, slug=f"c{n}", name="c") for n in range(6)]
    start = threading.Barrier(len(concepts))
    results = []

    def edit(concept):
        try:
            start.wait()
            results.append(labels.set_label(item, concept, POS, 0, alice))
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(concept,)) for concept in concepts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 5 + [True]
    item.refresh_from_db()
    assert item.revision == 1
    assert item.annotations.count() == 1


# Dataset versions never change


def version_state(version):
    version.refresh_from_db()
    rows = version.rows.order_by("pk").values_list(
        "external_id", "text", "text_hash", "positive", "negative"
    )
    return (version.content_hash, version.input_count, version.concept_counts, list(rows))


@pytest.mark.django_db
def test_a_version_survives_relabeling_and_deletions(alice, app, spam, ham):
    dataset = Dataset.objects.create(app=app, slug="emails")
    other = Concept.objects.create(app=app, slug="other", name="Other")
    for n in range(60):
        marks = [(spam, POS if n % 2 else NEG), (other, POS)] + ([(ham, POS)] if n % 3 else [])
        add_input(app, f"text {n}", datasets=[dataset], labels=marks, external_id=f"m{n}")
    version = DatasetVersion.objects.create(dataset=dataset, number=1)
    versions.snapshot(version.pk)
    client, api = signed_in(alice), Api(alice)
    before = version_state(version)
    export_before = export(client, version)
    assert before[0] == versions.rows_hash(version)
    assert before[1] == 60

    everything = Input.objects.filter(app=app)
    ids = list(everything.order_by("pk").values_list("pk", flat=True))
    labels.label_inputs(everything, ham, NEG, alice)
    labels.unlabel_inputs(everything.filter(pk__in=ids[:20]), spam)
    response = client.post("/apps/spam-filter/inputs/bulk/", {"action": "delete", "ids": ids[:10]})
    assert response.status_code == 302
    assert api.delete(f"/apps/spam-filter/inputs/{ids[10]}").status_code == 204
    Input.objects.filter(pk=ids[11]).delete()  # the ORM's own cascade
    assert client.post("/apps/spam-filter/concepts/other/delete/").status_code == 302
    Annotation.objects.filter(concept=spam).delete()
    labels.remove_from_dataset(everything, dataset)

    assert Input.objects.filter(app=app).count() == 48
    assert version_state(version) == before
    assert versions.rows_hash(version) == before[0]
    assert export(client, version) == export_before
    assert DatasetVersionRow.objects.filter(version=version, input=None).count() == 12


def export(client, version) -> bytes:
    dataset = version.dataset.slug
    url = f"/apps/spam-filter/datasets/{dataset}/versions/{version.number}/export.csv"
    response = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_the_content_hash_tells_a_changed_row(app, spam):
    dataset = Dataset.objects.create(app=app, slug="emails")
    add_input(app, "Win a prize now", datasets=[dataset], labels=[(spam, POS)])
    version = DatasetVersion.objects.create(dataset=dataset, number=1)
    versions.snapshot(version.pk)
    version.rows.update(positive=[])
    version.refresh_from_db()
    assert versions.rows_hash(version) != version.content_hash


# Deleting an app, dataset, concept or model


def make_world(app, tag):
    """An app with every kind of object: two datasets, a version of each, labels, a
    model with versions, an evaluation, a batch prediction and an import."""
    spam = Concept.objects.create(app=app, slug="spam", name="Spam")
    ham = Concept.objects.create(app=app, slug="ham", name="Ham")
    emails = Dataset.objects.create(app=app, slug="emails")
    texts = Dataset.objects.create(app=app, slug="texts")
    for n in range(6):
        add_input(
            app,
            f"{tag} text {n}",
            datasets=[emails] if n < 4 else [emails, texts],
            labels=[(spam, POS)] if n % 2 else [(spam, NEG), (ham, POS)],
        )
    dataset_versions = []
    for dataset in (emails, texts):
        version = DatasetVersion.objects.create(dataset=dataset, number=1)
        versions.snapshot(version.pk)
        dataset_versions.append(version)
    model = TrainableModel.objects.create(app=app, slug="classifier")
    trained = [
        ModelVersion.objects.create(
            model=model, number=n, params=default_params(), dataset_version=dataset_versions[0]
        )
        for n in (1, 2)
    ]
    Evaluation.objects.create(model_version=trained[0], dataset_version=dataset_versions[0])
    Evaluation.objects.create(model_version=trained[1], dataset_version=dataset_versions[1])
    PredictionJob.objects.create(model_version=trained[0], filename="batch.csv", data=b"")
    ImportJob.objects.create(app=app, filename="inputs.csv", data=b"")
    Embedding.objects.create(base_model="m", text_hash=text_hash(tag), vector=b"\0" * 4)


TABLES = {
    "apps": App,
    "concepts": Concept,
    "inputs": Input,
    "labels": Annotation,
    "datasets": Dataset,
    "memberships": Membership,
    "dataset versions": DatasetVersion,
    "version rows": DatasetVersionRow,
    "models": TrainableModel,
    "model versions": ModelVersion,
    "evaluations": Evaluation,
    "batch predictions": PredictionJob,
    "imports": ImportJob,
    "embeddings": Embedding,
    "tokens": ApiToken,
}
STATED = re.compile(
    r"(\d+) (dataset versions?|datasets?|inputs?|labels?|concepts?|model versions?|models?"
    r"|evaluations?|batch predictions?)\b"
)


def all_rows():
    return {name: set(table.objects.values_list("pk", flat=True)) for name, table in TABLES.items()}


def stated_counts(text):
    """{"datasets": 2, ...} from a confirmation such as "2 datasets, 1 model and ..."."""
    plural = {"dataset version": "dataset versions", "batch prediction": "batch predictions"}
    counts = {}
    for number, noun in STATED.findall(text):
        noun = plural.get(noun, noun if noun.endswith("s") else noun + "s")
        counts[noun] = int(number)
    return counts


def deletes(question):
    """The sentence "This deletes ..." of a confirmation."""
    return question.split("This deletes")[1].split(".")[0]


def rows_of_app(app):
    """Every row that belongs to `app`, table by table."""
    return {
        "apps": {app.pk},
        "concepts": set(app.concepts.values_list("pk", flat=True)),
        "inputs": set(app.inputs.values_list("pk", flat=True)),
        "labels": set(Annotation.objects.filter(input__app=app).values_list("pk", flat=True)),
        "datasets": set(app.datasets.values_list("pk", flat=True)),
        "memberships": set(
            Membership.objects.filter(dataset__app=app).values_list("pk", flat=True)
        ),
        "dataset versions": set(
            DatasetVersion.objects.filter(dataset__app=app).values_list("pk", flat=True)
        ),
        "version rows": set(
            DatasetVersionRow.objects.filter(version__dataset__app=app).values_list("pk", flat=True)
        ),
        "models": set(app.trainable_models.values_list("pk", flat=True)),
        "model versions": set(
            ModelVersion.objects.filter(model__app=app).values_list("pk", flat=True)
        ),
        "evaluations": set(
            Evaluation.objects.filter(model_version__model__app=app).values_list("pk", flat=True)
        ),
        "batch predictions": set(
            PredictionJob.objects.filter(model_version__model__app=app).values_list("pk", flat=True)
        ),
        "imports": set(app.import_jobs.values_list("pk", flat=True)),
        "embeddings": set(),
        "tokens": set(),
    }


@pytest.fixture
def world(alice, bob):
    """Alice's spam-filter (the target), her other app, and Bob's spam-filter."""
    target = App.objects.create(owner=alice, slug="spam-filter")
    others = [
        App.objects.create(owner=alice, slug="other"),
        App.objects.create(owner=bob, slug="spam-filter"),
    ]
    for tag, app in [("target", target), ("mine", others[0]), ("bobs", others[1])]:
        make_world(app, tag)
    ApiToken.issue(alice, "laptop")
    return target, others


def check_deletion(before, after, stated, expected_tables, target):
    """Exactly the stated rows went, all of them the target's; nothing else changed."""
    gone = {name: before[name] - after[name] for name in TABLES}
    assert all(after[name] <= before[name] for name in TABLES)  # nothing appeared
    for name, pks in gone.items():
        assert pks <= target[name], f"{name} of another app were deleted"
        if name in stated:
            assert len(pks) == stated[name], f"{name}: stated {stated[name]}, deleted {len(pks)}"
        elif name not in expected_tables:
            assert not pks, f"{len(pks)} {name} deleted without notice"


@pytest.mark.django_db
def test_deleting_an_app_removes_what_the_confirmation_says(alice_client, world):
    target, others = world
    page = alice_client.get("/apps/spam-filter/settings/")
    stated = stated_counts(page.text.split("deletes everything in it:")[1].split(".")[0])
    assert stated == {
        "datasets": 2,
        "dataset versions": 2,
        "inputs": 6,
        "labels": 9,
        "concepts": 2,
        "models": 1,
        "model versions": 2,
        "evaluations": 2,
        "batch predictions": 1,
    }
    owned, before = rows_of_app(target), all_rows()
    response = alice_client.post("/apps/spam-filter/delete/", {"confirm": "spam-filter"})
    assert response.status_code == 302
    after = all_rows()
    check_deletion(before, after, stated, {"apps", "memberships", "version rows", "imports"}, owned)
    assert {name: before[name] - after[name] for name in TABLES} == {
        name: owned[name] for name in TABLES
    }
    for app in others:
        assert rows_of_app(app)["inputs"] and App.objects.filter(pk=app.pk).exists()


@pytest.mark.django_db
def test_a_wrong_confirmation_deletes_nothing(alice_client, world):
    before = all_rows()
    response = alice_client.post("/apps/spam-filter/delete/", {"confirm": "spam"})
    assert response.status_code == 302
    assert all_rows() == before


@pytest.mark.django_db
def test_deleting_a_dataset_removes_what_the_confirmation_says(alice_client, world):
    target, _ = world
    dataset = target.datasets.get(slug="emails")
    page = alice_client.get("/apps/spam-filter/datasets/emails/")
    question = page.text.split("Delete dataset <b")[1].split("</p>")[0]
    stated = stated_counts(deletes(question))
    assert stated == {"dataset versions": 1, "evaluations": 1}
    assert "6 inputs and their labels stay" in question
    own = {
        "dataset versions": set(dataset.versions.values_list("pk", flat=True)),
        "version rows": set(
            DatasetVersionRow.objects.filter(version__dataset=dataset).values_list("pk", flat=True)
        ),
        "memberships": set(Membership.objects.filter(dataset=dataset).values_list("pk", flat=True)),
        "evaluations": set(
            Evaluation.objects.filter(dataset_version__dataset=dataset).values_list("pk", flat=True)
        ),
        "datasets": {dataset.pk},
    }
    before = all_rows()
    assert alice_client.post("/apps/spam-filter/datasets/emails/delete/").status_code == 302
    after = all_rows()
    check_deletion(
        before,
        after,
        stated,
        {"datasets", "memberships", "version rows"},
        own | {name: set() for name in TABLES.keys() - own.keys()},
    )
    assert {name: before[name] - after[name] for name in own} == own
    # Models trained on the deleted version keep their heads; only the link is gone.
    assert ModelVersion.objects.filter(model__app=target, dataset_version=None).count() == 2


@pytest.mark.django_db
def test_deleting_a_concept_removes_what_the_confirmation_says(alice_client, world):
    target, _ = world
    concept = target.concepts.get(slug="spam")
    page = alice_client.get("/apps/spam-filter/concepts/spam/delete/", headers=HTMX)
    stated = stated_counts(page.text)
    assert stated == {"labels": 6}
    own = {name: set() for name in TABLES} | {
        "concepts": {concept.pk},
        "labels": set(concept.annotations.values_list("pk", flat=True)),
    }
    before = all_rows()
    version_rows = list(DatasetVersionRow.objects.values_list("positive", "negative"))
    assert alice_client.post("/apps/spam-filter/concepts/spam/delete/").status_code == 302
    check_deletion(before, all_rows(), stated, {"concepts"}, own)
    assert before["labels"] - all_rows()["labels"] == own["labels"]
    assert list(DatasetVersionRow.objects.values_list("positive", "negative")) == version_rows


@pytest.mark.django_db
def test_deleting_a_model_removes_what_the_confirmation_says(alice_client, world):
    target, _ = world
    model = target.trainable_models.get()
    page = alice_client.get("/apps/spam-filter/models/classifier/")
    question = page.text.split("Delete model <b")[1].split("</p>")[0]
    stated = stated_counts(deletes(question))
    assert stated == {"model versions": 2, "evaluations": 2, "batch predictions": 1}
    own = {name: set() for name in TABLES} | {
        "models": {model.pk},
        "model versions": set(model.versions.values_list("pk", flat=True)),
        "evaluations": set(
            Evaluation.objects.filter(model_version__model=model).values_list("pk", flat=True)
        ),
        "batch predictions": set(
            PredictionJob.objects.filter(model_version__model=model).values_list("pk", flat=True)
        ),
    }
    before = all_rows()
    assert alice_client.post("/apps/spam-filter/models/classifier/delete/").status_code == 302
    after = all_rows()
    check_deletion(before, after, stated, {"models"}, own)
    assert {name: before[name] - after[name] for name in TABLES} == own
