"""Workers really killed with SIGKILL in the middle of training."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

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
from tests.test_tasks import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
Status = ModelVersion.Status


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(broker, tmp_path):
    """A real Celery worker process (one child) on the test database and Redis."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker,
        "PORTAL_HEARTBEAT_SECONDS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    log.close()


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


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
    os.killpg(worker.pid, signal.SIGKILL)
    time.sleep(4)
    assert reaper.reap() == 1
    version.refresh_from_db()
    assert version.status == Status.FAILED
    assert "stopped without finishing" in version.error
    assert version.head is None
