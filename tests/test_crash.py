"""Workers really killed with SIGKILL in the middle of training."""

import os
import signal
import time

import pytest

from portal import reaper, training, versions
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    Input,
    ModelVersion,
    TrainableModel,
    default_params,
    text_hash,
)
from tests.workers import children, kill_all, wait_for, worker_process

pytestmark = pytest.mark.django_db(transaction=True)

Status = ModelVersion.Status


@pytest.fixture
def worker(broker, tmp_path):
    """A real Celery worker process (one child) on the test database and Redis."""
    with worker_process(broker, tmp_path / "worker.log") as process:
        yield process


@pytest.fixture
def model(alice):
    """A model whose training embeds a few hundred new texts: long enough to be killed."""
    app = App.objects.create(owner=alice, slug="spam-filter")
    dataset = Dataset.objects.create(app=app, slug="emails")
    spam = Concept.objects.create(app=app, slug="spam", name="spam")
    items = Input.objects.bulk_create(
        Input(
            app=app,
            text=f"message number {i}: " + "word " * (i % 40),
            text_hash=text_hash(f"message number {i}: " + "word " * (i % 40)),
        )
        for i in range(600)
    )
    dataset.inputs.set(items)
    Annotation.objects.bulk_create(
        Annotation(input=item, concept=spam, value=i % 2) for i, item in enumerate(items)
    )
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    params = default_params()
    params.update(dataset_id="emails", dataset_version_id="1", concepts=["spam"])
    params["train_params"].update(enrich_dataset="Disabled", C=1.0)
    return TrainableModel.objects.create(app=app, slug="detector", params=params)


def training_started(version: ModelVersion) -> bool:
    version.refresh_from_db()
    return version.status == Status.TRAINING and version.progress > 0


def test_a_killed_worker_child_is_replaced_and_the_version_trained(worker, model):
    version = training.start_training(model)
    assert wait_for(lambda: training_started(version), timeout=90)
    (child,) = children(worker.pid)
    os.kill(child, signal.SIGKILL)
    assert wait_for(lambda: ModelVersion.objects.get(pk=version.pk).is_finished, timeout=120)
    version.refresh_from_db()
    assert version.status == Status.TRAINED, version.error
    assert version.attempts == 2
    assert "previous worker stopped" in version.log


def test_a_killed_worker_is_reaped_with_a_reason(worker, model, settings):
    settings.PORTAL_HEARTBEAT_DEADLINE = 3
    version = training.start_training(model)
    assert wait_for(lambda: training_started(version), timeout=90)
    kill_all(worker)
    time.sleep(4)
    assert reaper.reap() == 1
    version.refresh_from_db()
    assert version.status == Status.FAILED
    assert "stopped without finishing" in version.error
    assert version.head is None
