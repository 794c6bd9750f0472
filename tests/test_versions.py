import hashlib
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import versions
from portal.models import (
    Annotation,
    Concept,
    Dataset,
    DatasetVersion,
    DatasetVersionRow,
    Input,
)
from portal.queue import QueueUnavailable

Status = DatasetVersion.Status
POS, NEG = Annotation.POSITIVE, Annotation.NEGATIVE


def add_input(app, text, *, dataset=None, labels=(), external_id=""):
    item = Input.objects.create(
        app=app,
        text=text,
        text_hash=hashlib.sha256(text.encode()).hexdigest(),
        external_id=external_id,
    )
    if dataset is not None:
        dataset.inputs.add(item)
    for concept, value in labels:
        Annotation.objects.create(input=item, concept=concept, value=value)
    return item


@pytest.fixture
def dataset(app, spam, ham):
    dataset = Dataset.objects.create(app=app, slug="emails")
    add_input(app, "Win a prize now", dataset=dataset, labels=[(spam, POS), (ham, NEG)])
    add_input(app, "Lunch at noon?", dataset=dataset, labels=[(ham, POS)], external_id="m2")
    add_input(app, "Cheap pills", dataset=dataset, labels=[(spam, POS)])
    add_input(app, "No labels here", dataset=dataset)
    add_input(app, "Not in the dataset", labels=[(spam, POS)])
    return dataset


def new_pending(dataset, number=1):
    return DatasetVersion.objects.create(dataset=dataset, number=number)


def rows_of(version):
    return list(
        version.rows.order_by("text").values_list(
            "external_id", "text", "text_hash", "positive", "negative"
        )
    )


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db
def test_it_snapshots_the_inputs_and_labels(dataset):
    version = new_pending(dataset)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    assert version.status == Status.READY
    assert version.error == ""
    assert version.input_count == 4
    assert version.concept_counts == {
        "ham": {"positive": 1, "negative": 1},
        "spam": {"positive": 2, "negative": 0},
    }
    assert len(version.content_hash) == 64
    rows = {row[1]: row for row in rows_of(version)}
    assert rows["Win a prize now"][3:] == (["spam"], ["ham"])
    assert rows["Lunch at noon?"][0] == "m2"
    assert rows["Lunch at noon?"][3:] == (["ham"], [])
    assert rows["No labels here"][3:] == ([], [])
    assert rows["Cheap pills"][2] == hashlib.sha256(b"Cheap pills").hexdigest()
    assert "Not in the dataset" not in rows


@pytest.mark.django_db
def test_it_sorts_the_concepts_of_a_row(app, dataset):
    item = add_input(app, "Many labels", dataset=dataset)
    for slug in ("zeta", "alpha", "mid"):
        Annotation.objects.create(input=item, concept=Concept.objects.create(app=app, slug=slug))
    version = new_pending(dataset)
    versions.snapshot(version.pk)
    assert version.rows.get(text="Many labels").positive == ["alpha", "mid", "zeta"]


@pytest.mark.django_db
def test_the_query_count_does_not_grow_with_the_inputs(app, dataset, spam):
    def queries_for_snapshot(number):
        version = new_pending(dataset, number)
        with CaptureQueriesContext(connection) as captured:
            versions.snapshot(version.pk)
        return len(captured)

    few = queries_for_snapshot(1)
    for n in range(60):
        add_input(app, f"text {n}", dataset=dataset, labels=[(spam, n % 2)])
    assert queries_for_snapshot(2) == few


@pytest.mark.django_db
def test_the_content_hash_depends_on_content_only(app, spam, ham, dataset):
    first = new_pending(dataset, 1)
    versions.snapshot(first.pk)
    # The same texts and labels, added in another order to another dataset.
    other = Dataset.objects.create(app=app, slug="copy")
    for item in reversed(list(dataset.inputs.all())):
        other.inputs.add(item)
    copy = new_pending(other, 1)
    versions.snapshot(copy.pk)
    first.refresh_from_db()
    copy.refresh_from_db()
    assert copy.content_hash == first.content_hash
    Annotation.objects.filter(concept=ham).update(value=POS)
    changed = new_pending(dataset, 2)
    versions.snapshot(changed.pk)
    changed.refresh_from_db()
    assert changed.content_hash != first.content_hash


@pytest.mark.django_db
def test_a_version_never_changes_afterwards(app, dataset, spam, ham):
    version = new_pending(dataset)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    before = (rows_of(version), version.concept_counts, version.content_hash, version.input_count)

    Annotation.objects.filter(concept=spam).update(value=NEG)  # relabel
    Input.objects.get(text="Cheap pills").delete()  # delete an input
    ham.delete()  # delete a concept and its labels
    add_input(app, "A new text", dataset=dataset, labels=[(spam, POS)])  # add inputs

    version.refresh_from_db()
    after = (rows_of(version), version.concept_counts, version.content_hash, version.input_count)
    assert after == before
    assert version.status == Status.READY
    # The row of the deleted input stays, detached from it.
    assert version.rows.get(text="Cheap pills").input is None


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.IN_PROGRESS, Status.READY, Status.FAILURE])
def test_a_redelivered_snapshot_does_nothing(dataset, status):
    version = DatasetVersion.objects.create(dataset=dataset, number=1, status=status)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    assert version.status == status
    assert not version.rows.exists()


@pytest.mark.django_db
def test_a_snapshot_runs_once(dataset):
    version = new_pending(dataset)
    versions.snapshot(version.pk)
    versions.snapshot(version.pk)
    assert version.rows.count() == 4


@pytest.mark.django_db
def test_a_failed_snapshot_leaves_no_rows(dataset, monkeypatch):
    monkeypatch.setattr(versions, "BATCH_SIZE", 2)
    real_bulk_create = DatasetVersionRow.objects.bulk_create
    calls = []

    def fail_on_second_batch(rows, *args, **kwargs):
        calls.append(len(rows))
        if len(calls) == 2:
            raise ValueError("disk full")
        return real_bulk_create(rows, *args, **kwargs)

    monkeypatch.setattr(DatasetVersionRow.objects, "bulk_create", fail_on_second_batch)
    version = new_pending(dataset)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    assert calls == [2, 2]
    assert version.status == Status.FAILURE
    assert version.error == "The snapshot failed: ValueError: disk full"
    assert not DatasetVersionRow.objects.exists()


@pytest.mark.django_db
def test_a_failed_version_is_not_overwritten_by_a_late_failure(dataset):
    version = DatasetVersion.objects.create(dataset=dataset, number=1, status=Status.READY)
    versions.mark_failed(version.pk, "worker lost")
    version.refresh_from_db()
    assert version.status == Status.READY


@pytest.mark.django_db
def test_versions_are_numbered_per_dataset(app, dataset):
    assert [versions.create_version(dataset).number for _ in range(3)] == [1, 2, 3]
    other = Dataset.objects.create(app=app, slug="other")
    assert versions.create_version(other).number == 1
    assert DatasetVersion.objects.get(dataset=dataset, number=3).status == Status.PENDING


@pytest.mark.django_db
def test_the_export_has_the_rows_without_metadata(dataset):
    version = new_pending(dataset)
    versions.snapshot(version.pk)
    rows = sorted(versions.export_rows(version), key=lambda row: row.text)
    assert [row.text for row in rows] == [
        "Cheap pills",
        "Lunch at noon?",
        "No labels here",
        "Win a prize now",
    ]
    assert rows[3].concepts == ("spam",)
    assert rows[3].negative_concepts == ("ham",)
    assert rows[1].external_id == "m2"
    assert all(row.metadata == {} for row in rows)
    assert versions.export_filename(version, "csv") == "spam-filter_emails_v1.csv"


@pytest.mark.django_db(transaction=True)
def test_new_version_ends_ready_through_a_real_worker(alice_client, dataset, celery_worker):
    response = alice_client.post("/apps/spam-filter/datasets/emails/versions/new/")
    assert response.status_code == 302
    version = DatasetVersion.objects.get(dataset=dataset)
    assert version.number == 1
    assert wait_for(lambda: DatasetVersion.objects.get(pk=version.pk).is_finished)
    version.refresh_from_db()
    assert version.status == Status.READY, version.error
    assert version.input_count == 4
    assert version.rows.count() == 4
    row = alice_client.get(
        "/apps/spam-filter/datasets/emails/versions/1/status/", headers={"HX-Request": "true"}
    )
    assert b"READY" in row.content
    assert b"hx-trigger" not in row.content


@pytest.mark.django_db(transaction=True)
def test_new_version_over_htmx_reloads_to_show_the_queue_error(alice_client, dataset, dead_broker):
    response = alice_client.post(
        "/apps/spam-filter/datasets/emails/versions/new/", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"
    page = alice_client.get("/apps/spam-filter/datasets/emails/")
    assert QueueUnavailable.message.encode() in page.content
    assert not DatasetVersion.objects.filter(status=Status.PENDING).exists()


@pytest.mark.django_db(transaction=True)
def test_create_version_raises_and_marks_the_version_failed(dataset, dead_broker):
    with pytest.raises(QueueUnavailable):
        versions.create_version(dataset)
    assert DatasetVersion.objects.get(dataset=dataset).status == Status.FAILURE
